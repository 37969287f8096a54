"""Inside the timed windows the runtime reads nothing from the device and copies no Python data to it.

Counted with `HostReadCounter` (torch function calls that synchronise a GPU with the host, and tensor
factories fed Python data) only while a timer window is open, with the runtime's index checks deferred
past the windows as they are on a GPU. The runtime itself (vanilla) makes none; each method's own reads
are pinned at what it makes today, so a new one inside a timed window fails here.
"""

from __future__ import annotations

import contextlib

import pytest

from vidcost.methods import get_method, method_names
from vidcost.methods.testing import HostReadCounter
from vidcost.runtime import StagedRuntime, build_inputs, build_model
from vidcost.runtime import prefill as prefill_module
from vidcost.spec import load_spec

# Each method's own host reads and copies of Python data per prefill of the tiny model (4 frames), as they
# stand: the data-dependent clustering and segmenting of HieraVid, PruneVid and MMG-Vid read counts and
# segment bounds and copy per-group quotas, FrameFusion reads how many pairs merged, DyCoke's decode stage
# reads whether a step's attention changed (once per decode step after the first); the others none.
METHOD_READS = {"hieravid": 14, "prunevid": 6, "mmgvid": 7, "framefusion": 6, "dycoke": 1}
METHOD_COPIES = {"hieravid": 9, "prunevid": 6, "mmgvid": 3}
BUDGETS = {"pdrop": 0.6}


class _WindowTimer:
    """A timer that measures nothing and says whether a window is open."""

    def __init__(self) -> None:
        self.depth = 0

    @contextlib.contextmanager
    def window(self, name: str):
        self.depth += 1
        try:
            yield
        finally:
            self.depth -= 1


@pytest.fixture(scope="module")
def llava():
    loaded = build_model(load_spec("tiny", frames=4), seed=3)
    return StagedRuntime(loaded), build_inputs(loaded, seed=5)


@pytest.mark.parametrize("name", method_names())
def test_no_host_read_or_copy_inside_the_timed_windows(llava, name, monkeypatch):
    runtime, inputs = llava
    deferred = []
    monkeypatch.setattr(prefill_module._Run, "check", lambda self, check: deferred.append(check))
    method = get_method(name)
    budget = 1.0 if name == "vanilla" else BUDGETS.get(name, 0.3)
    runtime.prefill(inputs, method, budget, decode_tokens=2)  # warm: one-off work is not the point
    timer = _WindowTimer()
    with HostReadCounter(when=lambda: timer.depth > 0) as counted:
        runtime.prefill(inputs, method, budget, timer=timer, decode_tokens=2)
    assert len(counted.copies) <= METHOD_COPIES.get(name, 0), f"{name}: host-to-device copies {counted.copies}"
    assert len(counted.calls) <= METHOD_READS.get(name, 0), f"{name}: host reads {counted.calls}"
    for check in deferred:  # what the windows left for later still holds
        check()
