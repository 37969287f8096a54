"""PruneVid: temporal segments, static-token merging, DPC-kNN clustering, attention stage, budget solve."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from vidcost.errors import ConfigError
from vidcost.methods import LayerContext, get_method
from vidcost.methods.common import keep_count
from vidcost.methods.prunevid import _static_positions
from vidcost.spec import load_spec


@pytest.mark.parametrize("budget", [0.1, 0.2, 0.25, 0.3, 0.5, 0.7])
def test_plan_mean_fraction_is_the_budget(budget):
    method = get_method("prunevid")
    spec = load_spec("llava-onevision-7b")
    schedule = method.plan(spec, budget)
    total = spec.num_visual_tokens
    assert abs(schedule.mean_visual_fraction - budget) <= 1.0 / total
    assert schedule.visual_tokens[0] >= keep_count(total, budget)
    runs = schedule.segments()
    # layers 0…10 see every pre-LLM token; layer 10's attention ranks; layers 11… see the survivors
    assert len(runs) == 2 and runs[1][0] == 11
    if schedule.visual_tokens[0] < total:  # α = 0.4 of the pre-LLM tokens survive layer 10
        assert runs[1][2] / runs[0][2] == pytest.approx(0.4, abs=0.01)
        # `prompt_prefill` keeps only the survivors' keys and values in layers 0…10 too
        assert schedule.cached_visual_tokens == (runs[1][2],) * 28


def test_prune_layer_is_the_official_selected_layer():
    method = get_method("prunevid")
    assert method.attention_source == "previous"  # layer 10's own attention, after it ran
    assert method.drop_layer(28) == 11 and method.drop_layer(32) == 11
    assert method.drop_layer(6) == 5  # a shallow model prunes before its last layer
    assert method.plan(load_spec("tiny"), 1.0).visual_tokens == (1024,) * 6


def test_three_scenes_give_three_segments(scenes_video):
    result = get_method("prunevid").select_visual(scenes_video(), 0.25)
    assert result.segments == ((0, 3), (4, 7), (8, 11))


def test_four_scenes_with_cutaways_are_four_contiguous_segments(scenes_video):
    """`refine_clusters`: the DPC labels fragment (a cutaway frame joins another scene's cluster); refined,
    every cluster keeps its longest run and the fragments join their neighbour: the four scenes."""
    from vidcost.methods import clustering

    video = scenes_video(scenes=4, frames_per_scene=5, noise=0.1, seed=1)
    video[2], video[7] = video[12], video[17]  # frame 2 shows scene 3, frame 7 scene 4
    _, raw = clustering.dpc_cluster(video.mean(1).unsqueeze(0), 5, 7, exact=True)
    assert len(clustering.runs_of(raw[0].tolist())) > 4  # unrefined: one-frame pieces
    result = get_method("prunevid").select_visual(video, 0.25)
    assert result.segments == ((0, 4), (5, 9), (10, 14), (15, 19))


def test_refine_labels_keeps_longest_runs_and_gives_fragments_to_the_longer_neighbour():
    from vidcost.methods.clustering import refine_labels

    assert refine_labels([0, 0, 1, 0, 0, 2, 2, 2]) == [0, 0, 0, 0, 0, 2, 2, 2]  # tie of neighbours: left
    assert refine_labels([1, 0, 0, 0, 1, 1, 1, 1]) == [0, 0, 0, 0, 1, 1, 1, 1]  # no left neighbour
    assert refine_labels([5, 5, 5, 7, 9, 9]) == [5, 5, 5, 5, 9, 9]  # the longer neighbour wins
    assert refine_labels([3, 4, 5]) == [0, 0, 0]  # every cluster one frame long: label 0
    assert refine_labels([2, 2, 3, 3, 2, 2]) == [2, 2, 3, 3, 2, 2]  # equal longest runs are all kept


def test_static_video_collapses_to_one_frame():
    frame = torch.randn(1, 16, 32, generator=torch.Generator().manual_seed(1))
    video = frame.expand(12, -1, -1).contiguous()
    static = _static_positions(video, ((0, 11),), tau=0.8, target=16)
    assert bool(static[0].all())  # every position is static: temporal merging leaves P tokens
    method = get_method("prunevid")
    budget = 0.05 * (11 / 28 + 0.4 * 17 / 28) / 0.614  # K0 = round(0.05·192 / 0.614) = 16 tokens: one frame
    result = method.select_visual(video, budget)
    assert result.segments == ((0, 11),)
    assert result.positions.tolist() == list(range(16))
    assert torch.allclose(result.tokens, frame[0], atol=1e-6)  # averages of identical tokens


def test_static_positions_are_relaxed_to_meet_a_high_budget():
    video = torch.randn(1, 8, 16).expand(4, -1, -1).contiguous()  # fully static, 32 tokens
    static = _static_positions(video, ((0, 3),), tau=0.8, target=20)
    # each static position saves 3 tokens; at most 12 may be saved → 4 static positions
    assert int(static[0].sum()) == 4


def test_spatial_clusters_are_means_of_similar_tokens():
    # one frame, two groups of identical tokens → two clusters, each exactly its group's token
    a, b = torch.full((4, 8), 1.0), torch.full((4, 8), -1.0)
    a[:, 0], b[:, 0] = 3.0, -3.0
    video = torch.cat([a, b]).unsqueeze(0)
    budget = 2 / 8 * (11 / 28 + 0.4 * 17 / 28)  # K0 = 2
    result = get_method("prunevid").select_visual(video, budget)
    assert result.tokens.shape == (2, 8)
    assert torch.allclose(result.tokens[0], a[0]) and torch.allclose(result.tokens[1], b[0])
    assert result.positions[0] < 4 <= result.positions[1]


def test_attention_stage_keeps_the_most_attended_tokens():
    method = get_method("prunevid")
    hidden = torch.randn(10, 8)
    attention = torch.rand(3, 2, 10) * 0.1
    attention[1, 0, 7] = 0.9  # one question token, one head: max over both picks it
    attention[2, 1, 2] = 0.8
    context = LayerContext(layer=11, hidden=hidden, positions=torch.arange(10) * 3, attention=attention,
                           num_frames=5, tokens_per_frame=6)
    reduction = method.reduce_in_llm(context, 2)
    assert reduction.keep.tolist() == [2, 7] and reduction.hidden is None


def test_top_alpha_within_each_group_not_globally():
    """`process_attention`: each segment's static group and each frame's dynamic tokens keep their own top α."""
    attention = torch.zeros(1, 1, 10)
    attention[0, 0, :5] = torch.tensor([0.9, 0.8, 0.7, 0.6, 0.5])  # group 0 holds every high score
    attention[0, 0, 5:] = torch.tensor([0.1, 0.05, 0.3, 0.2, 0.01])
    groups = torch.tensor([0, 0, 0, 0, 0, 1, 1, 1, 1, 1])
    context = LayerContext(layer=11, hidden=torch.randn(10, 4), positions=torch.arange(10), attention=attention,
                           num_frames=2, tokens_per_frame=5, groups=groups)
    keep = get_method("prunevid").reduce_in_llm(context, 4).keep.tolist()
    assert keep == [0, 1, 7, 8]  # two per group; a global top-4 would have been [0, 1, 2, 3]


def test_selection_groups_are_static_per_segment_and_dynamic_per_frame(scenes_video):
    video = scenes_video(noise=0.05)
    video[1:4, :4] = torch.randn(3, 4, video.shape[-1])  # positions 0–3 move inside scene 1
    result = get_method("prunevid").select_visual(video, 0.4)
    frames = result.positions // video.shape[1]
    for group in result.groups.unique().tolist():
        members = frames[result.groups == group]
        assert members.unique().numel() == 1  # a static group sits at its segment's first frame
    assert result.groups.unique().numel() > len(result.segments)  # dynamic frames form their own groups


def test_attention_stage_without_attention_is_a_config_error():
    context = LayerContext(layer=2, hidden=torch.ones(6, 4), positions=torch.arange(6), attention=None,
                           num_frames=1, tokens_per_frame=6)
    with pytest.raises(ConfigError, match="attention of the rows after the video.*got none"):
        get_method("prunevid").reduce_in_llm(context, 1)


def test_one_frame_video_clusters_spatially():
    video = torch.randn(1, 20, 8)
    result = get_method("prunevid").select_visual(video, 0.3)
    assert result.segments == ((0, 0),)
    assert result.positions.numel() == keep_count(20, 0.3 / (11 / 28 + 0.4 * 17 / 28))


@pytest.mark.parametrize("name, value", [("tau", 1.2), ("alpha", 0.0), ("temporal_segment_ratio", 0.0),
                                         ("k", 0), ("prune_layer", -1), ("cluster_above", -1)])
def test_parameters_out_of_range(name, value):
    with pytest.raises(ConfigError, match=name):
        get_method("prunevid", **{name: value}).plan(load_spec("tiny"), 0.5)


def test_a_one_layer_model_cannot_hold_the_attention_stage():
    one_layer = dataclasses.replace(load_spec("tiny"), num_layers=1)
    with pytest.raises(ConfigError, match="needs 2 layers or more; the model has 1"):
        get_method("prunevid").plan(one_layer, 0.25)
    assert get_method("prunevid").plan(one_layer, 1.0).visual_tokens == (1024,)


def test_the_sequence_is_laid_out_as_merge_frames_dynamic_lays_it(scenes_video):
    """Segment after segment, its static clusters then each frame's dynamic clusters (group ids ascend along
    the sequence); a clustered group in the official cluster order — its centres by descending ρ·δ, as
    `compute_cluster_vectors` writes the clusters `cluster_dpc_knn`'s topk found; a group kept whole in place."""
    from vidcost.methods import clustering
    from vidcost.methods.prunevid import _official_order

    video = scenes_video(noise=0.05)
    result = get_method("prunevid").select_visual(video, 0.4)
    groups = result.groups.tolist()
    assert groups == sorted(groups)
    assert result.positions.tolist() != sorted(result.positions.tolist())  # not position order
    rank = torch.tensor([[3, 0, 4, 1, 2], [0, 1, 2, 3, 4]])
    # row 0 clustered into 2: its centres are ranks 0 and 1 (indices 1, 3); row 1 kept whole: in place
    assert _official_order(rank, [2, 5]).tolist() == [1, 3, 5, 6, 7, 8, 9]
    points = torch.randn(1, 20, 4, generator=torch.Generator().manual_seed(0))
    _, _, ranks = clustering.dpc_cluster_ranked(points, 6, 3)
    centres = _official_order(ranks, [6])
    assert ranks[0, centres].tolist() == list(range(6))  # the topk order of the decision values
