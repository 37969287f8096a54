"""Schedule: the piecewise CLI form, its validation, and the numbers every method compares on."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vidcost.errors import ConfigError
from vidcost.schedule import Schedule, parse_schedule


def parse(text: str, layers: int = 6, visual: int = 100, text_tokens: int = 8) -> Schedule:
    return parse_schedule(text, num_layers=layers, initial_visual_tokens=visual, text_tokens=text_tokens)


def test_piecewise_form() -> None:
    schedule = parse("0:1.0,2:0.3,4:0.1")
    assert schedule.visual_tokens == (100, 100, 30, 30, 10, 10)
    assert schedule.text_tokens == 8 and schedule.initial_visual_tokens == 100
    assert schedule.mean_visual_fraction == pytest.approx((200 + 60 + 20) / 600)
    assert schedule.segments() == [(0, 1, 100), (2, 3, 30), (4, 5, 10)]
    assert "L2-3:30" in str(schedule) and "\n" not in str(schedule)


def test_layers_before_the_first_pair_keep_everything() -> None:
    assert parse("3:0.5").visual_tokens == (100, 100, 100, 50, 50, 50)
    assert parse(" 0 : 0.25 ").visual_tokens == (25,) * 6  # spaces are tolerated


def test_round_trip_and_constant() -> None:
    schedule = parse("0:1.0,2:0.3")
    assert Schedule.from_dict(schedule.to_dict()) == schedule
    constant = Schedule.constant(4, 50, 3, initial_visual_tokens=200)
    assert constant.visual_tokens == (50,) * 4 and constant.mean_visual_fraction == 0.25


@pytest.mark.parametrize("text, fragment", [
    ("0:1.0,2:x", "'2:x' in \"0:1.0,2:x\""),
    ("0:1.0;2:0.3", "'0:1.0;2:0.3'"),
    ("a:0.5", "'a:0.5'"),
    ("0:1.0,,2:0.3", "''"),
    ("0:1.0,6:0.3", "layer 6 is out of range; the model has layers 0..5"),
    ("0:-0.1", "-0.1 at layer 0 is outside [0, 1]"),
    ("0:1.2", "1.2"),
    ("2:0.5,1:0.3", "must ascend"),
    ("0:0.3,2:0.5", "exceeds"),
])
def test_malformed_schedules_point_at_the_bad_part(text: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse(text)
    assert fragment in str(info.value)


def test_schedule_never_grows() -> None:
    with pytest.raises(ConfigError, match="increase at layer 1"):
        Schedule((10, 20), 0, 20)
    with pytest.raises(ConfigError, match="exceed the initial"):
        Schedule((30, 20), 0, 20)
    with pytest.raises(ConfigError, match="-1 at layer 1 are negative"):
        Schedule((5, -1), 0, 20)
    with pytest.raises(ConfigError, match="at least one layer"):
        Schedule((), 0, 0)


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 40), st.integers(0, 5000), st.data())
def test_parsed_schedules_are_valid(layers: int, visual: int, data: st.DataObject) -> None:
    starts = sorted(data.draw(st.sets(st.integers(0, layers - 1), min_size=1, max_size=layers)))
    fractions = sorted(data.draw(st.lists(st.floats(0, 1), min_size=len(starts), max_size=len(starts))),
                       reverse=True)
    text = ",".join(f"{layer}:{fraction!r}" for layer, fraction in zip(starts, fractions))
    schedule = parse(text, layers=layers, visual=visual)
    assert schedule.num_layers == layers
    assert all(a >= b for a, b in zip(schedule.visual_tokens, schedule.visual_tokens[1:]))
    assert all(0 <= n <= visual for n in schedule.visual_tokens)
    assert schedule.visual_tokens[starts[-1]] == round(fractions[-1] * visual)
    assert 0.0 <= schedule.mean_visual_fraction <= 1.0
    assert sum(last - first + 1 for first, last, _ in schedule.segments()) == layers


def test_cached_tokens_trim_the_kv_cache_of_earlier_layers() -> None:
    from vidcost.cost import kv_cache_bytes
    from vidcost.spec import load_spec

    spec = load_spec("tiny", frames=2)  # 6 layers, 128 visual tokens
    plain = Schedule((128, 128, 32, 32, 32, 32), 10, 128)
    trimmed = Schedule((128, 128, 32, 32, 32, 32), 10, 128, cached_visual_tokens=(32,) * 6)
    assert plain.kv_visual_tokens == plain.visual_tokens and Schedule.from_dict(trimmed.to_dict()) == trimmed
    assert kv_cache_bytes(spec, plain) - kv_cache_bytes(spec, trimmed) == 2 * 2 * 96 * spec.kv_dim * 2
    # same as entering: normalised away
    assert Schedule((128,) * 6, 10, 128, cached_visual_tokens=(128,) * 6).cached_visual_tokens is None
    with pytest.raises(ConfigError, match="layer 0 caches 16"):
        Schedule((128, 128, 32, 32, 32, 32), 10, 128, cached_visual_tokens=(16,) + (32,) * 5)
