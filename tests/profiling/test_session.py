"""profile_method: records in the agreed schema, shared run_id, executed = planned, failed records on OOM."""

from __future__ import annotations

import json

import pytest
import torch

from vidcost.errors import ConfigError, ProfilingError
from vidcost.profiling import ProfileRecord, profile_method
from vidcost.runtime import StagedRuntime
from vidcost.spec import load_spec
from vidcost.store import read_records

SPEC = load_spec("tiny", frames=2)
# Timings on a shared machine are noisy; the warning itself is tested in test_stats.py.
pytestmark = pytest.mark.filterwarnings("ignore::vidcost.profiling.stats.NoisyMeasurementWarning")
SCHEMA_KEYS = {"kind", "schema_version", "run_id", "created_at", "status", "error", "method", "params", "budget",
               "model", "frames", "device", "dtype", "planned_schedule", "executed_schedule", "stages_ms",
               "samples_ms", "stats_ms", "ttft_ms", "llm_prefill_ms", "peak_memory_bytes", "memory_source",
               "energy_j", "power_w", "flops", "environment"}
ENVIRONMENT_KEYS = {"device_name", "driver", "cuda", "torch", "transformers", "dtype", "threads", "vidcost_git",
                    "python", "platform", "seed"}


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    store = tmp_path_factory.mktemp("store") / "runs.jsonl"
    messages: list[str] = []
    comparison = profile_method(spec=SPEC, method="fastv", budget=0.25, params={"layer": 3}, repeats=3, warmup=1,
                                seed=2, store=store, progress=messages.append)
    return comparison, read_records(store), messages


def test_two_records_share_a_run_id_and_follow_the_schema(stored):
    comparison, records, _ = stored
    assert [r["method"] for r in records] == ["vanilla", "fastv"]
    assert records[0]["run_id"] == records[1]["run_id"] == comparison.method.run_id
    for record in records:
        assert SCHEMA_KEYS <= set(record) and record["kind"] == "profile" and record["status"] == "ok"
        assert ENVIRONMENT_KEYS <= set(record["environment"]) and record["environment"]["seed"] == 2
        assert set(record["stages_ms"]) >= {"vision", "projector", "llm_prefill", "first_token"}
        assert all(len(v) == 3 for v in record["samples_ms"].values())
        assert record["ttft_ms"] == record["stats_ms"]["ttft"]["median"] and "ttft" not in record["stages_ms"]
        assert record["llm_prefill_ms"] == record["stages_ms"]["llm_prefill"]
        assert record["memory_source"] == "cpu_allocator_events" and record["peak_increase_bytes"] > 0
        assert record["peak_memory_bytes"] > record["peak_increase_bytes"]  # + the resident weights
        assert record["kv_cache_bytes"] > 0 and record["decode_ms_per_token"] is None
        assert record["frames"] == 2 and record["device"] == "cpu" and record["dtype"] == "float32"
        assert ProfileRecord.from_dict(record).to_dict() == record
    assert records[1]["params"] == {"layer": 3} and "selection" in records[1]["stages_ms"]


def test_executed_schedule_and_flops(stored):
    comparison, records, _ = stored
    method = records[1]
    assert method["executed_schedule"] == method["planned_schedule"]
    assert method["executed_schedule"]["visual_tokens"] == [128, 128, 128, 32, 32, 32]
    assert records[0]["executed_schedule"]["visual_tokens"] == [128] * 6
    assert method["flops"]["llm_prefill"] < records[0]["flops"]["llm_prefill"]
    assert method["flops"]["paper"] < method["flops"]["llm_prefill"] < method["flops"]["ttft"]
    assert comparison.flops_speedup == pytest.approx(records[0]["flops"]["llm_prefill"] / method["flops"]["llm_prefill"])
    assert comparison.speedup == pytest.approx(records[0]["ttft_ms"] / method["ttft_ms"])


def test_json_summary_and_progress(stored):
    comparison, _, messages = stored
    payload = json.loads(json.dumps(comparison.to_dict()))
    for key in ("method", "budget", "ttft_ms", "vanilla_ttft_ms", "speedup", "flops_speedup", "samples_ms",
                "peak_memory_bytes", "planned_schedule", "executed_schedule", "stages_ms", "device"):
        assert key in payload
    assert payload["achieved_tflops"] > 0
    assert messages[0].startswith("building tiny") and messages[-2:] == ["repeat 3/3", "memory runs"]


def test_bad_arguments_are_config_errors(tmp_path):
    store = tmp_path / "runs.jsonl"
    with pytest.raises(ConfigError, match="choose one of"):
        profile_method(spec=SPEC, method="mmg", budget=0.25, store=store)
    with pytest.raises(ConfigError, match="outside \\(0, 1\\]"):
        profile_method(spec=SPEC, method="uniform", budget=0.0, store=store)
    with pytest.raises(ConfigError, match="--repeats"):
        profile_method(spec=SPEC, method="uniform", budget=0.5, repeats=0, store=store)
    with pytest.raises(ConfigError, match="Unknown parameter"):
        profile_method(spec=SPEC, method="fastv", budget=0.5, params={"k": 2}, store=store)
    assert not store.exists()


def test_out_of_memory_writes_failed_records_and_says_what_to_lower(tmp_path, monkeypatch):
    store = tmp_path / "runs.jsonl"
    store.write_text('{"kind": "accuracy", "score": 1}\n')

    def exhausted(self, *args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    monkeypatch.setattr(StagedRuntime, "prefill", exhausted)
    with pytest.raises(ProfilingError, match="out of memory .* lower --frames"):
        profile_method(spec=SPEC, method="uniform", budget=0.5, repeats=1, warmup=0, store=store)
    records = read_records(store)
    assert records[0] == {"kind": "accuracy", "score": 1}
    failed = records[1:]
    assert [r["method"] for r in failed] == ["vanilla", "uniform"]
    assert all(r["status"] == "failed" and "lower --frames" in r["error"] for r in failed)
    assert failed[0]["run_id"] == failed[1]["run_id"]


def test_out_of_memory_while_building_writes_failed_records(tmp_path, monkeypatch):
    """A 7B model that does not fit the GPU fails in build_model (a ProfilingError from the CUDA OOM)."""
    from vidcost.runtime import model

    def exhausted(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 1.02 GiB")

    monkeypatch.setattr(model, "_build_shape_only", exhausted)
    store = tmp_path / "runs.jsonl"
    with pytest.raises(ProfilingError, match="out of memory .* lower --frames"):
        profile_method(spec=SPEC, method="fastv", budget=0.5, repeats=1, warmup=0, store=store)
    records = read_records(store)
    assert [(r["method"], r["status"]) for r in records] == [("vanilla", "failed"), ("fastv", "failed")]


def test_other_build_errors_write_no_failed_record(tmp_path, monkeypatch):
    from vidcost.runtime import model

    def broken(*args, **kwargs):
        raise ProfilingError("something else went wrong")

    monkeypatch.setattr(model, "_build_shape_only", broken)
    with pytest.raises(ProfilingError, match="something else"):
        profile_method(spec=SPEC, method="fastv", budget=0.5, repeats=1, store=tmp_path / "runs.jsonl")
    assert not (tmp_path / "runs.jsonl").exists()


def test_unwritable_store_fails_before_measuring(tmp_path, monkeypatch):
    from vidcost.errors import DataFormatError

    (tmp_path / "file").write_text("")
    monkeypatch.setattr(StagedRuntime, "prefill", lambda *a, **k: pytest.fail("measured before checking the store"))
    with pytest.raises(DataFormatError, match="cannot append to store .* pass a writable file to --store"):
        profile_method(spec=SPEC, method="uniform", budget=0.5, repeats=1, store=tmp_path / "file" / "runs.jsonl")


class _FakeNvml:
    """pynvml's units: bytes, milliwatts, millijoules; stands in for a GPU's NVML on the CPU."""

    energy_mj = 0.0

    def nvmlInit(self):
        pass

    def nvmlDeviceGetHandleByIndex(self, index):
        return index

    def nvmlDeviceGetMemoryInfo(self, handle):
        return type("Memory", (), {"used": 3 * 2**30})()

    def nvmlDeviceGetPowerUsage(self, handle):
        return 300_000

    def nvmlDeviceGetTotalEnergyConsumption(self, handle):
        _FakeNvml.energy_mj += 1_500.0
        return _FakeNvml.energy_mj


def test_nvml_and_energy_blocks_reach_the_record(monkeypatch):
    """The GPU-only NVML path of a session, driven on the CPU through a fake NVML module.

    Each counter read adds 1.5 J, so a block of n runs reads 1.5 J in all (start and stop reads):
    joules per prefill = 1.5 / n; the blocks alternate vanilla, method, vanilla, method.
    """
    from vidcost.profiling import nvml, session

    monkeypatch.setattr(session, "_nvml_sampler", lambda device: nvml.NvmlSampler(nvml=_FakeNvml()))
    monkeypatch.setattr(session.ProfileSession, "_energy", _cpu_energy_blocks)
    comparison = profile_method(spec=SPEC, method="uniform", budget=0.5, repeats=2, warmup=0, energy_blocks=2,
                                store=None)
    for record in (comparison.vanilla, comparison.method):
        assert record.nvml_peak_used_bytes == 3 * 2**30
        assert [b["runs"] for b in record.energy_blocks] == [1, 1]       # min block 0 s: one run each
        assert record.energy_j == pytest.approx(1.5)                     # mJ → J, per prefill
        assert record.power_source == "energy/time" and record.power_w > 0


def _cpu_energy_blocks(self, configs, runs, blocks):
    """`ProfileSession._energy` without torch.cuda.synchronize (the only CUDA call in it)."""
    from vidcost.profiling.energy import measure_energy_blocks

    summaries = measure_energy_blocks([(c.method.name, lambda c=c: self._prefill(c, runs, None)) for c in configs],
                                      self.sampler, blocks=blocks, min_block_s=0.0, idle_s=0.0)
    for config in configs:
        config.energy = summaries.get(config.method.name)


def test_nvml_sampler_stops_when_the_prefill_runs_out_of_memory(monkeypatch):
    from vidcost.profiling import nvml, session

    samplers = []

    def sampler(device):
        samplers.append(nvml.NvmlSampler(nvml=_FakeNvml()))
        return samplers[-1]

    def exhausted(self, *args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    monkeypatch.setattr(session, "_nvml_sampler", sampler)
    monkeypatch.setattr(StagedRuntime, "prefill", exhausted)
    with pytest.raises(ProfilingError, match="out of memory"):
        profile_method(spec=SPEC, method="uniform", budget=0.5, repeats=1, warmup=0, store=None)
    assert samplers and not samplers[0]._thread.is_alive()  # no poller left running in the caller's process


def test_session_finds_the_nvml_device_by_torch_uuid(monkeypatch):
    """The session's device → NVML mapping, torch.cuda and pynvml faked: by UUID, not by index."""
    import sys
    from types import SimpleNamespace

    from vidcost.profiling import session

    class FakePynvml(_FakeNvml):
        def nvmlDeviceGetHandleByIndex(self, index):
            raise AssertionError("torch's index is not NVML's")

        def nvmlDeviceGetHandleByUUID(self, uuid):
            return ("handle", uuid)

    asked = []
    monkeypatch.setattr(torch.cuda, "get_device_properties",
                        lambda device: asked.append(device) or SimpleNamespace(uuid="1b2c3d4e-aaaa"))
    monkeypatch.setitem(sys.modules, "pynvml", FakePynvml())
    sampler = session._nvml_sampler("cuda:1")
    assert asked == ["cuda:1"] and sampler._handle == ("handle", "GPU-1b2c3d4e-aaaa")


@pytest.mark.gpu
def test_profile_on_cuda(tmp_path):
    comparison = profile_method(spec=SPEC, method="fastv", budget=0.25, repeats=2, device="cuda",
                                store=tmp_path / "runs.jsonl")
    record = comparison.method
    assert record.device == "cuda:0" and record.dtype == "bfloat16"
    assert record.memory_source == "cuda_allocator" and record.peak_increase_bytes > 0
    assert record.executed_schedule == record.planned_schedule


def test_a_decode_that_runs_out_of_memory_is_a_failed_record(tmp_path, monkeypatch):
    store = tmp_path / "runs.jsonl"

    def exhausted(self, cache, token, inputs, steps, timer, stop_when=None, **kwargs):
        if steps:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return [token]

    monkeypatch.setattr(StagedRuntime, "_decode_steps", exhausted)
    with pytest.raises(ProfilingError, match="out of memory profiling fastv .* lower --frames"):
        profile_method(spec=SPEC, method="fastv", budget=0.5, repeats=1, warmup=0, decode_tokens=4, store=store)
    records = read_records(store)
    assert [(r["method"], r["status"], r["decode_tokens"]) for r in records] == [("vanilla", "failed", 4),
                                                                                 ("fastv", "failed", 4)]


def test_a_session_measures_several_configurations_on_one_model(tmp_path):
    """A sweep's worker: one model, cells of different methods and frame counts, vanilla in each run."""
    from vidcost.profiling import ProfileSession

    session = ProfileSession(SPEC)
    built = session.loaded.model
    store = tmp_path / "runs.jsonl"
    first = session.measure("uniform", 0.5, repeats=1, warmup=0, store=store, config_hash="a")
    second = session.measure("fastv", 0.5, frames=1, repeats=1, warmup=0, store=store, config_hash="b")
    assert session.loaded.model is built
    assert first.method.frames == 2 and second.method.frames == 1 and second.vanilla.frames == 1
    records = read_records(store)
    assert [(r["method"], r["config_hash"]) for r in records] == [("vanilla", "a"), ("uniform", "a"),
                                                                  ("vanilla", "b"), ("fastv", "b")]
    assert records[0]["run_id"] == records[1]["run_id"] != records[2]["run_id"] == records[3]["run_id"]
