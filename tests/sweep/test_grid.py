"""Grid: cells in run order, each checked before anything runs; config hashes that change with what a cell
measures and with nothing else; the TOML grid file and its one-line errors."""

from __future__ import annotations

import dataclasses

import pytest

from vidcost.errors import ConfigError
from vidcost.spec import load_spec
from vidcost.sweep import Grid, MethodEntry, SweepSettings, expand_grid, grid_from_mapping, load_grid
from vidcost.sweep.grid import config_hash

QUICK = {"repeats": 1, "warmup": 0}


def grid(**values):
    return grid_from_mapping({**QUICK, **values})


def test_cells_in_run_order_with_vanilla_once_per_frame_count():
    cells = expand_grid(grid(methods=["fastv", "vanilla", {"name": "uniform", "budgets": [0.5]}],
                             budgets=[0.1, 0.3], frames=[2, 1]))
    assert [(c.frames, c.method.name, c.budget) for c in cells] == [
        (2, "fastv", 0.1), (2, "fastv", 0.3), (2, "vanilla", 1.0), (2, "uniform", 0.5),
        (1, "fastv", 0.1), (1, "fastv", 0.3), (1, "vanilla", 1.0), (1, "uniform", 0.5)]
    assert all(c.spec.frames == c.frames and c.settings.dtype == "float32" for c in cells)
    assert cells[0].params == {"layer": 2}  # resolved: the default filled in
    assert len({c.config_hash for c in cells}) == len(cells)


def test_budgets_may_come_from_the_methods_alone():
    cells = expand_grid(grid(methods=["vanilla", {"name": "uniform", "budgets": [0.5]}], frames=[1]))
    assert [(c.method.name, c.budget) for c in cells] == [("vanilla", 1.0), ("uniform", 0.5)]


def test_frames_default_to_the_models_own():
    (cell,) = expand_grid(grid(methods="uniform", budgets=0.25))
    assert cell.frames == load_spec("tiny").frames and cell.model == "tiny"


def test_hash_is_stable_and_changes_with_what_is_measured():
    base = expand_grid(grid(methods=["fastv"], budgets=[0.25], frames=[2]))[0]
    again = expand_grid(grid(methods=[{"name": "fastv", "layer": 2}], budgets=[0.25], frames=[2]))[0]
    assert again.config_hash == base.config_hash  # the default given explicitly is the same cell
    changes = [dict(methods=[{"name": "fastv", "layer": 3}]), dict(budgets=[0.3]), dict(frames=[3]),
               dict(repeats=2), dict(decode_tokens=2), dict(dtype="bfloat16"), dict(seed=1),
               dict(text_tokens=40), dict(methods=["uniform"]), dict(warmup=1)]
    for change in changes:
        values = {"methods": ["fastv"], "budgets": [0.25], "frames": [2], **change}
        assert expand_grid(grid(**values))[0].config_hash != base.config_hash, change


def test_resolution_sets_the_qwen_frame_size_and_is_part_of_the_cell():
    default, smaller = (expand_grid(grid(models=["tiny-qwen2.5-vl"], methods=["fastv"], budgets=[0.25], frames=[2],
                                         **extra))[0] for extra in ({}, {"resolution": [112, 168]}))
    assert smaller.spec.frame_shape == (112, 168) and smaller.spec.tokens_per_frame < default.spec.tokens_per_frame
    assert smaller.config_hash != default.config_hash
    with pytest.raises(ConfigError, match=r"model 'tiny' \(llava_onevision\) takes 224 px frames; --resolution"):
        expand_grid(grid(methods=["fastv"], budgets=[0.25], resolution=448))
    with pytest.raises(ConfigError, match=r"`resolution` must be N or \[HEIGHT, WIDTH\] in pixels, got '448'"):
        grid(methods=["fastv"], budgets=[0.25], resolution="448")


def test_hash_depends_on_the_device_kind_not_the_index():
    spec = load_spec("tiny", frames=2)
    digest = {device: config_hash(spec, "fastv", {"layer": 2}, 0.25, SweepSettings(device=device, dtype="bfloat16"))
              for device in ("cuda", "cuda:0", "cuda:3", "cpu")}
    assert digest["cuda"] == digest["cuda:0"] == digest["cuda:3"] != digest["cpu"]


def test_hash_includes_the_vidcost_version(monkeypatch):
    import vidcost

    spec, settings = load_spec("tiny", frames=2), SweepSettings(dtype="float32")
    before = config_hash(spec, "fastv", {"layer": 2}, 0.25, settings)
    monkeypatch.setattr(vidcost, "__version__", "9.9.9")
    assert config_hash(spec, "fastv", {"layer": 2}, 0.25, settings) != before


GRID_FILE = """\
# 2 methods x 2 budgets x 2 frame counts on the default model
budgets = [0.1, 0.25]
frames = [1, 2]
repeats = 1
warmup = 0

[[methods]]
name = "fastv"
layer = 3

[[methods]]
name = "divprune"
budgets = [0.5]   # this method's own budgets
"""


def test_grid_file(tmp_path):
    path = tmp_path / "grid.toml"
    path.write_text(GRID_FILE)
    loaded = load_grid(path)
    assert loaded.methods == (MethodEntry("fastv", {"layer": 3}), MethodEntry("divprune", {}, (0.5,)))
    assert loaded.budgets == (0.1, 0.25) and loaded.frames == (1, 2) and loaded.settings.repeats == 1
    cells = expand_grid(loaded)
    assert [c.label for c in cells[:3]] == ["fastv(layer=3) @ 0.1, 1 frames, tiny",
                                            "fastv(layer=3) @ 0.25, 1 frames, tiny", "divprune @ 0.5, 1 frames, tiny"]
    assert len(cells) == 6 and cells[0].params == {"layer": 3}
    overridden = load_grid(path, {"budgets": [0.3], "repeats": 2})
    assert overridden.budgets == (0.3,) and overridden.settings.repeats == 2


@pytest.mark.parametrize("values,message", [
    ({"methods": [], "budgets": [0.1]}, "empty grid: no methods; pass --methods a,b"),
    ({"budgets": [0.1]}, "empty grid: no methods"),
    ({"methods": ["fastv"], "budgets": []}, "empty grid: no budgets"),
    ({"methods": ["fastv"], "budgets": [0.1], "frames": []}, "empty grid: no frames"),
    ({"methods": ["fastv"], "budgets": [0.1], "models": []}, "empty grid: no models"),
    ({"methods": ["fastv", "mmg"], "budgets": [0.1]}, "Unknown pruning method 'mmg'; choose one of ["),
    ({"methods": [{"name": "fastv", "layr": 3}], "budgets": [0.1]},
     "cell fastv(layr=3) @ 0.1, 16 frames, tiny: Unknown parameter(s) ['layr'] for method 'fastv'; valid: ['layer']"),
    ({"methods": [{"name": "fastv", "layer": 9}], "budgets": [0.1]}, "fastv parameter layer=9 is outside [1, 5]"),
    ({"methods": ["uniform"], "budgets": [0.1, 1.5]}, "budget 1.5 is outside (0, 1]"),
    ({"methods": ["uniform"], "budgets": [0.1, 0.1]}, "lists the cell uniform @ 0.1, 16 frames, tiny twice"),
    ({"methods": ["uniform"], "budgets": ["0.1"]}, "`budgets` must be numbers, got '0.1'"),
    ({"methods": ["uniform"], "budgets": [0.1], "frames": [0]}, "frames must be at least 1, got 0"),
    ({"methods": ["uniform"], "budgets": [0.1], "budget": 0.2}, "unknown key(s) ['budget']; valid keys:"),
    ({"methods": ["uniform"], "budgets": [0.1], "model": "nope"}, "Unknown model 'nope'"),
    ({"methods": ["uniform"], "budgets": [0.1], "device": "gpu"}, "unknown device 'gpu'; choose cpu, cuda or cuda:N"),
    ({"methods": ["uniform"], "budgets": [0.1], "dtype": "float8"}, "unknown dtype 'float8'"),
    ({"methods": ["uniform"], "budgets": [0.1], "repeats": 0}, "--repeats must be a whole number ≥ 1, got 0"),
    ({"methods": ["uniform"], "budgets": [0.1], "decode_tokens": -1}, "--decode-tokens must be a whole number ≥ 0"),
    ({"methods": ["uniform"], "budgets": [0.1], "threads": 0}, "--threads must be a whole number ≥ 1, got 0"),
    ({"methods": ["uniform"], "budgets": [0.1], "text_tokens": 1}, "pass --text-tokens 2 or more"),
    ({"methods": [3], "budgets": [0.1]}, "a `methods` entry must be a method name or a table with a `name`"),
])
def test_bad_grids_are_one_line_config_errors(values, message):
    with pytest.raises(ConfigError) as caught:
        expand_grid(grid_from_mapping({**QUICK, **values}))
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_an_unknown_method_anywhere_fails_the_whole_grid_before_any_cell():
    with pytest.raises(ConfigError, match="Unknown pruning method 'fastvv'"):
        expand_grid(Grid(methods=(MethodEntry("uniform"), MethodEntry("fastvv")), budgets=(0.1,), frames=(1, 2)))


def test_malformed_grid_file_names_the_line(tmp_path):
    path = tmp_path / "grid.toml"
    path.write_text('budgets = [0.1, 0.2]\nmethods = ["fastv"\nrepeats = 1\n')
    with pytest.raises(ConfigError) as caught:
        load_grid(path)
    assert f"grid file '{path}' is not valid TOML" in str(caught.value) and "line 3" in str(caught.value)


def test_missing_grid_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist; pass a TOML grid file"):
        load_grid(tmp_path / "none.toml")


def test_settings_are_frozen_and_hashable():
    settings = SweepSettings()
    assert hash(settings) == hash(SweepSettings())
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.repeats = 2  # type: ignore[misc]


def test_the_readme_grid_file_is_a_valid_grid(tmp_path):
    from pathlib import Path

    readme = (Path(__file__).parents[2] / "README.md").read_text()
    block = readme.split("**Grid file.**", 1)[1].split("```toml\n", 1)[1].split("```", 1)[0]
    (tmp_path / "grid.toml").write_text(block)
    cells = expand_grid(load_grid(tmp_path / "grid.toml"))
    assert len(cells) == 2 * (3 * 3 + 1)  # frames × (three methods × three budgets + prunevid's one)
    assert {c.label for c in cells} >= {"fastv(layer=3) @ 0.1, 8 frames, tiny",
                                        "prunevid(tau=0.9) @ 0.5, 16 frames, tiny"}
    assert cells[0].settings.decode_tokens == 8 and cells[0].settings.repeats == 3
