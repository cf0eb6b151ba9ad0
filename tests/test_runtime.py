"""Precision and thread choice (drc.runtime): faked capability answers, forced values, the records."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path

import pytest
import torch

import drc.precision as prec
import drc.runtime as rt
import drc.threads as th
from drc.config import RunConfig
from drc.errors import DrcError
from drc.eval.probes import ProbeConfig
from drc.precision import CpuCaps, resolve_precision
from drc.run_folder import RunInfo
from drc.threads import choose_threads, configure_threads

CPU = torch.device("cpu")
CUDA = torch.device("cuda", 0)  # a device object only: nothing here touches a GPU

AMX = CpuCaps(amx=True, avx512_bf16=True, avx512=True, avx2=True, source="torch.cpu")
AVX512_BF16 = CpuCaps(avx512_bf16=True, avx512=True, avx2=True, source="torch.cpu")  # Zen 4, Cooper Lake
AVX512 = CpuCaps(avx512=True, avx2=True, source="torch.cpu")  # Skylake / Ice Lake server: no bf16 unit
AVX2 = CpuCaps(avx2=True, source="/proc/cpuinfo")
UNKNOWN = CpuCaps()  # not x86, or no flags to read


def _no_probe() -> tuple[float, float]:
    raise AssertionError("the matmul probe must not run when the CPU flags answer")


# --------------------------------------------------------------------------- precision


@pytest.mark.parametrize(
    ("caps", "want", "why"),
    [
        (AMX, "bf16", "AMX"),
        (AVX512_BF16, "bf16", "avx512_bf16"),
        (AVX512, "fp32", "vector units: AVX-512"),
        (AVX2, "fp32", "vector units: AVX2"),
    ],
)
def test_auto_on_cpu_follows_the_capability_flags(caps: CpuCaps, want: str, why: str) -> None:
    used, reason = resolve_precision("auto", CPU, caps=caps, probe=_no_probe, env={})
    assert used == want
    assert why in reason and caps.source in reason


@pytest.mark.parametrize(("native", "want"), [(True, "bf16"), (False, "fp32")])
def test_auto_on_cuda_follows_native_bf16_support(native: bool, want: str) -> None:
    used, reason = resolve_precision("auto", CUDA, cuda_bf16=native, caps=AVX2, env={})
    assert used == want and "CUDA" in reason


@pytest.mark.parametrize("caps", [AMX, AVX512, AVX2, UNKNOWN])
@pytest.mark.parametrize("forced", ["bf16", "fp32"])
def test_a_forced_precision_wins(caps: CpuCaps, forced: str) -> None:
    assert resolve_precision(forced, CPU, caps=caps, probe=_no_probe) == (
        forced,
        f"precision={forced} was asked for",
    )
    assert resolve_precision(forced, CUDA, cuda_bf16=forced == "fp32")[0] == forced


@pytest.mark.parametrize("forced", ["bf16", "fp32"])
@pytest.mark.parametrize("caps", [AMX, AVX2, UNKNOWN])
def test_drc_precision_answers_auto_for_the_whole_machine(caps: CpuCaps, forced: str) -> None:
    env = {"DRC_PRECISION": forced}
    used, reason = resolve_precision("auto", CPU, caps=caps, probe=_no_probe, env=env)
    assert (used, reason) == (forced, f"DRC_PRECISION={forced} is set")
    other = "fp32" if forced == "bf16" else "bf16"
    assert resolve_precision(other, CPU, caps=caps, env=env)[0] == other  # an explicit setting wins
    assert resolve_precision("auto", CPU, caps=AVX2, env={"DRC_PRECISION": "auto"})[0] == "fp32"


def test_drc_precision_takes_only_known_values() -> None:
    with pytest.raises(DrcError, match="DRC_PRECISION must be bf16, fp32 or auto, got 'fp16'"):
        resolve_precision("auto", CPU, caps=AVX2, env={"DRC_PRECISION": "fp16"})


@pytest.mark.parametrize("bad", ["fp16", "BF16", "", "float32"])
def test_an_unknown_precision_is_an_error_listing_the_valid_ones(bad: str) -> None:
    with pytest.raises(DrcError, match="valid: auto, bf16, fp32"):
        resolve_precision(bad, CPU, caps=AMX)
    with pytest.raises(DrcError, match="unknown precision"):
        prec.autocast(CPU, bad)


@pytest.mark.parametrize(
    ("fp32", "bf16", "want"), [(75.0, 25.0, "fp32"), (300.0, 2000.0, "bf16"), (100.0, 110.0, "fp32")]
)
def test_without_flags_a_matmul_probe_decides(fp32: float, bf16: float, want: str) -> None:
    used, reason = resolve_precision(
        "auto", CPU, caps=UNKNOWN, probe=lambda: (fp32, bf16), env={}
    )
    assert used == want and "probe" in reason  # bf16 must be clearly faster: autocast's casts cost too


def test_the_probe_runs_once_per_machine_then_comes_from_the_cache(tmp_path: Path) -> None:
    calls = []

    def probe() -> tuple[float, float]:
        calls.append(1)
        return 80.0, 20.0

    assert prec.cached_matmul_probe(probe, tmp_path) == (80.0, 20.0)
    assert prec.cached_matmul_probe(probe, tmp_path) == (80.0, 20.0)
    assert len(calls) == 1
    table = json.loads((tmp_path / "precision_probe.json").read_text())
    assert list(table.values()) == [[80.0, 20.0]]
    (tmp_path / "precision_probe.json").write_text("{not json")  # a damaged cache: measure again
    assert prec.cached_matmul_probe(probe, tmp_path) == (80.0, 20.0) and len(calls) == 2


def test_the_real_matmul_probe_measures_both_precisions() -> None:
    fp32, bf16 = prec.matmul_probe(n=64, reps=1)
    assert fp32 > 0 and bf16 > 0


def test_capabilities_fall_back_to_proc_cpuinfo(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu sse avx2 avx512f avx512_bf16\nmodel name\t: X\n")
    assert prec._cpuinfo_flags(str(info)) == {"fpu", "sse", "avx2", "avx512f", "avx512_bf16"}
    assert prec._cpuinfo_flags(str(tmp_path / "missing")) is None

    monkeypatch.setattr(platform, "machine", lambda: "x86_64")
    monkeypatch.delattr(torch.cpu, "_is_amx_tile_supported")  # a torch without the private queries
    monkeypatch.setattr(prec, "_cpuinfo_flags", lambda: {"avx2", "avx512f", "avx512_bf16"})
    caps = prec.cpu_capabilities.__wrapped__()
    assert caps == CpuCaps(amx=False, avx512_bf16=True, avx512=True, avx2=True, source="/proc/cpuinfo")
    monkeypatch.setattr(prec, "_cpuinfo_flags", lambda: None)
    assert not prec.cpu_capabilities.__wrapped__().known
    monkeypatch.setattr(platform, "machine", lambda: "aarch64")  # x86 flags say nothing there
    assert prec.cpu_capabilities.__wrapped__() == UNKNOWN


def test_torch_and_the_kernel_agree_on_this_cpu() -> None:
    flags = prec._cpuinfo_flags()
    caps = prec.cpu_capabilities()
    if flags is None or caps.source != "torch.cpu":
        pytest.skip("needs an x86 Linux machine")
    assert caps.avx512_bf16 == ("avx512_bf16" in flags)
    assert caps.avx2 == ("avx2" in flags)
    assert caps.amx <= ("amx_tile" in flags)  # torch may say no where the OS does not enable AMX


@pytest.mark.parametrize(("caps", "dtype"), [(AMX, torch.bfloat16), (AVX512, torch.float32)])
def test_autocast_and_the_trainer_run_in_the_precision_auto_resolves_to(
    monkeypatch: pytest.MonkeyPatch, caps: CpuCaps, dtype: torch.dtype
) -> None:
    from drc.config import OptimConfig
    from drc.loop.trainer import StepOutput, Trainer

    # what `auto` picks on this CPU kind, not what DRC_TEST_PRECISION forces for the rest of the suite
    monkeypatch.delenv("DRC_PRECISION", raising=False)
    monkeypatch.setattr(prec, "cpu_capabilities", lambda: caps)
    with prec.autocast(CPU, "auto"):
        assert (torch.randn(4, 4) @ torch.randn(4, 4)).dtype == dtype
    lin = torch.nn.Linear(4, 4)
    seen = []
    trainer = Trainer("t", {"m": lin}, list(lin.parameters()), OptimConfig(steps=1, warmup=0),
                      seed=0, device=CPU, precision="auto", progress=False)  # fmt: skip
    assert trainer.precision == ("bf16" if dtype == torch.bfloat16 else "fp32")

    def step(i: int, rnd: rt.StepRandom) -> StepOutput:
        y = lin(torch.randn(2, 4))
        seen.append(y.dtype)
        return StepOutput(y.float().pow(2).mean())

    trainer.fit(step)
    assert seen == [dtype]


def test_configs_default_to_auto() -> None:
    assert RunConfig().precision == "auto"
    assert ProbeConfig().precision == "auto"


# --------------------------------------------------------------------------- threads


@pytest.mark.parametrize(
    ("env", "cores", "want"),
    [
        ({}, 8, 8),  # alone: every usable core
        ({"LOCAL_WORLD_SIZE": "4"}, 8, 2),  # torchrun, 4 processes here: a quarter each
        ({"LOCAL_WORLD_SIZE": "3"}, 2, 1),  # more processes than cores: still one thread
        ({"LOCAL_WORLD_SIZE": "2", "OMP_NUM_THREADS": "1"}, 16, 8),  # torchrun's own default "1"
        ({"OMP_NUM_THREADS": "3"}, 8, None),  # the user's choice stays
        ({"OMP_NUM_THREADS": "1"}, 8, None),  # not under torchrun: the user set it
        ({"LOCAL_WORLD_SIZE": "2", "OMP_NUM_THREADS": "4"}, 16, None),
        ({"DRC_NUM_THREADS": "5", "OMP_NUM_THREADS": "3", "LOCAL_WORLD_SIZE": "2"}, 16, 5),  # wins
    ],
)
def test_thread_choice(env: dict[str, str], cores: int, want: int | None) -> None:
    n, reason = choose_threads(env, cores)
    assert n == want, reason
    assert reason


@pytest.mark.parametrize("bad", ["0", "-2", "two"])
def test_a_bad_drc_num_threads_is_an_error(bad: str) -> None:
    with pytest.raises(DrcError, match="DRC_NUM_THREADS"):
        choose_threads({"DRC_NUM_THREADS": bad}, 4)


def test_configure_threads_applies_the_choice_and_leaves_omp_num_threads_alone() -> None:
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        assert configure_threads({}, cores=2) == {"threads": 2, "reason": "2 usable cores"}
        assert torch.get_num_threads() == 2
        torch.set_num_threads(1)
        assert configure_threads({"OMP_NUM_THREADS": "2"}, cores=2)["threads"] == 1
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_usable_cores_counts_physical_cores_under_a_quota(tmp_path: Path) -> None:
    sysfs = tmp_path / "cpu"
    for cpu, core in [(0, 0), (1, 0), (2, 1), (3, 1)]:  # 2 cores with 2 hyperthreads each
        topo = sysfs / f"cpu{cpu}" / "topology"
        topo.mkdir(parents=True)
        (topo / "physical_package_id").write_text("0\n")
        (topo / "core_id").write_text(f"{core}\n")
    assert th._physical_cores({0, 1, 2, 3}, str(sysfs)) == 2
    assert th._physical_cores({0, 2}, str(sysfs)) == 2
    assert th._physical_cores({0, 1}, str(sysfs)) == 1
    assert th._physical_cores({7}, str(sysfs)) is None  # unreadable: the caller counts logical CPUs

    cg = tmp_path / "cgroup"
    cg.mkdir()
    assert th._cgroup_cpus(str(cg)) is None
    (cg / "cpu.max").write_text("max 100000\n")
    assert th._cgroup_cpus(str(cg)) is None
    (cg / "cpu.max").write_text("150000 100000\n")
    assert th._cgroup_cpus(str(cg)) == 2
    assert 1 <= th.usable_cores() <= len(os.sched_getaffinity(0))


# --------------------------------------------------------------------------- records


def test_run_json_records_the_precision_and_threads(tiny_drc_run: Path) -> None:
    info = RunInfo.load(tiny_drc_run / "run.json")
    assert info.precision == prec.precision_record("auto", CPU)
    assert info.precision["used"] in ("bf16", "fp32") and info.precision["reason"]
    assert info.threads["threads"] >= 1 and info.threads["reason"]


def test_an_old_run_json_without_the_records_still_loads(tmp_path: Path) -> None:
    old = {
        "method": "drc",
        "data": "d",
        "instruction": "an image",
        "timings_s": {},
        "stats": {},
        "base": None,
    }
    (tmp_path / "run.json").write_text(json.dumps(old))
    info = RunInfo.load(tmp_path / "run.json")
    assert info.precision == {} and info.threads == {}


def test_train_run_refuses_an_unknown_precision_before_writing(tiny_stickers: Path, tmp_path: Path) -> None:
    from drc.pipeline import train_run

    with pytest.raises(DrcError, match="unknown precision 'fp16'"):
        train_run(
            tiny_stickers, tmp_path / "run", preset="tiny", overrides={"precision": "fp16"}, progress=False
        )
    assert not (tmp_path / "run").exists()


def test_the_demo_report_environment_records_the_choice() -> None:
    from drc.config import build_config
    from drc.demo import _environment

    env = _environment(build_config("drc", "tiny", overrides={"precision": "fp32"}))
    assert env["precision"] == {"requested": "fp32", "used": "fp32", "reason": "precision=fp32 was asked for"}
    assert env["cpu_features"]["source"] in ("torch.cpu", "/proc/cpuinfo", "")
    assert env["cpu_threads"] == torch.get_num_threads() and env["threads_reason"]
