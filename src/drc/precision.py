"""Device and precision: which device, whether to compute in bf16 (measured per kind of machine), autocast."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

import torch

from drc.atomic import atomic_write_text
from drc.errors import DrcError

# the choices of the run config's `device` and `precision` (and `janus.dtype`): one list each
Device = Literal["auto", "cpu", "cuda"]
Precision = Literal["auto", "bf16", "fp32"]
DEVICES: tuple[str, ...] = get_args(Device)
PRECISIONS: tuple[str, ...] = get_args(Precision)


def resolve_device(name: str = "auto") -> torch.device:
    """`auto` picks CUDA when present (the local rank's GPU under torchrun), else CPU."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        if not torch.cuda.is_available():
            raise DrcError("device=cuda was asked for, but CUDA is not available on this machine")
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    if name == "cpu":
        return torch.device("cpu")
    raise DrcError(f"unknown device {name!r}; valid: {', '.join(DEVICES)}")


X86 = ("x86_64", "amd64", "i386", "i686", "x86")


@dataclass(frozen=True)
class CpuCaps:
    """What this CPU offers for bf16 matmuls, and where that answer came from.

    source is "torch.cpu" (PyTorch's own cpuinfo queries), "/proc/cpuinfo" (the kernel's flags), or
    "" when neither could answer (not an x86 CPU, or no flags to read): then the flags mean nothing.
    """

    amx: bool = False  # amx_bf16 / amx_tile: the tile unit does bf16 matmuls (Sapphire Rapids on)
    avx512_bf16: bool = False  # vdpbf16ps: native bf16 dot products (Cooper Lake, Zen 4 on)
    avx512: bool = False
    avx2: bool = False
    source: str = ""

    @property
    def known(self) -> bool:
        return bool(self.source)


def _cpuinfo_flags(path: str = "/proc/cpuinfo") -> set[str] | None:
    try:
        with open(path) as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        return None
    return None


@functools.lru_cache(maxsize=1)
def cpu_capabilities() -> CpuCaps:
    """This CPU's bf16-relevant features (cached: they do not change while the process runs)."""
    import platform

    if platform.machine().lower() not in X86:
        return CpuCaps()  # x86 flags say nothing about an ARM core's bf16 speed: probe instead
    cpu = getattr(torch, "cpu", None)
    names = (
        "_is_amx_tile_supported",
        "_is_avx512_bf16_supported",
        "_is_avx512_supported",
        "_is_avx2_supported",
    )
    if cpu is not None and all(hasattr(cpu, n) for n in names):
        try:
            # torch's check for AMX also asks the kernel for permission to use the tiles, so it
            # answers False where the CPU has AMX but the OS does not enable it
            return CpuCaps(
                amx=bool(cpu._is_amx_tile_supported()),
                avx512_bf16=bool(cpu._is_avx512_bf16_supported()),
                avx512=bool(cpu._is_avx512_supported()),
                avx2=bool(cpu._is_avx2_supported()),
                source="torch.cpu",
            )
        except Exception:  # noqa: BLE001 - private API: fall back to the kernel's flags
            pass
    flags = _cpuinfo_flags()
    if flags is None:
        return CpuCaps()
    return CpuCaps(
        amx="amx_bf16" in flags or "amx_tile" in flags,
        avx512_bf16="avx512_bf16" in flags,
        avx512="avx512f" in flags,
        avx2="avx2" in flags,
        source="/proc/cpuinfo",
    )


def matmul_probe(n: int = 512, reps: int = 4) -> tuple[float, float]:
    """(fp32, bf16) GFLOP/s of an n x n matmul on this CPU, best of a few timed rounds."""
    out = []
    for dtype in (torch.float32, torch.bfloat16):
        a = torch.randn(n, n, dtype=dtype)
        b = torch.randn(n, n, dtype=dtype)
        a @ b  # warm-up: first calls pick kernels and allocate
        best = float("inf")
        for _ in range(3):
            t0 = time.perf_counter()
            for _ in range(reps):
                a @ b
            best = min(best, time.perf_counter() - t0)
        out.append(2 * n**3 * reps / best / 1e9)
    return out[0], out[1]


def _cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "drc"


def _machine_key() -> str:
    """Names this kind of machine for the probe cache: CPU model, architecture, torch version."""
    import platform

    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            model = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), "")
    except OSError:
        pass
    return "|".join((platform.machine(), platform.processor(), model, torch.__version__))


def cached_matmul_probe(
    probe: Callable[[], tuple[float, float]] = matmul_probe, cache_dir: Path | None = None
) -> tuple[float, float]:
    """`probe()`, measured once per kind of machine and remembered in ~/.cache/drc (or $XDG_CACHE_HOME)."""
    path = (cache_dir or _cache_dir()) / "precision_probe.json"
    key = _machine_key()
    try:
        table = json.loads(path.read_text())
    except (OSError, ValueError):
        table = {}
    if isinstance(table, dict) and key in table:
        fp32, bf16 = table[key]
        return float(fp32), float(bf16)
    fp32, bf16 = probe()
    table = table if isinstance(table, dict) else {}
    table[key] = [round(fp32, 1), round(bf16, 1)]
    with contextlib.suppress(OSError):  # a read-only home: the probe simply runs again next time
        atomic_write_text(path, json.dumps(table, indent=1))
    return fp32, bf16


@functools.lru_cache(maxsize=1)
def _probe_once() -> tuple[float, float]:
    # autocast("auto") resolves at every step: read the cache file once per process, not per step
    return cached_matmul_probe()


def _cuda_bf16_native() -> bool:
    try:  # emulated bf16 (pre-Ampere GPUs) counts as supported by default, and is slow
        return bool(torch.cuda.is_bf16_supported(including_emulation=False))
    except TypeError:  # older torch: no emulation to exclude
        return bool(torch.cuda.is_bf16_supported())


# bf16 must beat fp32 by this much in the probe: autocast adds casts that a bare matmul does not pay
PROBE_MARGIN = 1.25


# Machine-wide answer to `auto` (a test run forcing one precision, a site that wants fp32 everywhere)
PRECISION_ENV = "DRC_PRECISION"


def env_precision(env: Mapping[str, str] | None = None) -> str | None:
    """The precision `DRC_PRECISION` forces for `auto` ("bf16" / "fp32"), or None when unset."""
    raw = (os.environ if env is None else env).get(PRECISION_ENV, "").strip()
    if not raw or raw == "auto":
        return None
    if raw not in ("bf16", "fp32"):
        raise DrcError(f"{PRECISION_ENV} must be bf16, fp32 or auto, got {raw!r}")
    return raw


def resolve_precision(
    requested: str,
    device: torch.device,
    *,
    caps: CpuCaps | None = None,
    cuda_bf16: bool | None = None,
    probe: Callable[[], tuple[float, float]] | None = None,
    env: Mapping[str, str] | None = None,
) -> tuple[str, str]:
    """The precision to run in, "bf16" or "fp32", and why.

    "bf16" and "fp32" are used as asked. "auto" takes `DRC_PRECISION` where it is set (bf16 or
    fp32: one answer for every run on this machine, e.g. a test suite forced both ways); otherwise
    bf16 where the device multiplies in bf16 faster than in fp32: CUDA devices that support it;
    CPUs with AMX (bf16 matmuls ~7x fp32's) or avx512_bf16. Elsewhere bf16 is emulated (AVX-512
    alone: ~3x slower than fp32, measured) and fp32 is taken. CPUs whose flags cannot answer (not
    x86) are decided by a short matmul probe, cached per machine. caps / cuda_bf16 / probe / env
    replace the real queries (tests).
    """
    if requested not in PRECISIONS:
        raise DrcError(f"unknown precision {requested!r}; valid: {', '.join(PRECISIONS)}")
    if requested != "auto":
        return requested, f"precision={requested} was asked for"
    forced = env_precision(env)
    if forced is not None:
        return forced, f"{PRECISION_ENV}={forced} is set"
    if device.type == "cuda":
        ok = _cuda_bf16_native() if cuda_bf16 is None else cuda_bf16
        if ok:
            return "bf16", "CUDA device with native bf16"
        return "fp32", "CUDA device without native bf16 (before Ampere: bf16 would be emulated)"
    if device.type != "cpu":
        return "fp32", f"no bf16 rule for device type {device.type}"
    caps = cpu_capabilities() if caps is None else caps
    if caps.known:
        if caps.amx:
            return "bf16", f"CPU has AMX (from {caps.source}): bf16 matmuls run on the tile unit"
        if caps.avx512_bf16:
            return "bf16", f"CPU has avx512_bf16 (from {caps.source}): native bf16 dot products"
        units = "AVX-512" if caps.avx512 else "AVX2" if caps.avx2 else "below AVX2"
        why = f"CPU has no AMX and no avx512_bf16 (vector units: {units}; from {caps.source})"
        return "fp32", f"{why}: bf16 is emulated, slower than fp32"
    fp32, bf16 = (probe or _probe_once)()
    pick = "bf16" if bf16 >= PROBE_MARGIN * fp32 else "fp32"
    return pick, f"no CPU flags to go by; matmul probe: {fp32:.0f} GFLOP/s fp32, {bf16:.0f} bf16"


def precision_record(requested: str, device: torch.device) -> dict[str, str]:
    """{"requested", "used", "reason"}: what run.json and the demo report keep of the choice."""
    used, reason = resolve_precision(requested, device)
    return {"requested": requested, "used": used, "reason": reason}


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager[Any]:
    """bf16 autocast (AMX / avx512_bf16 on CPUs, tensor cores on GPUs) or a no-op for fp32.

    precision may be "auto": it is resolved here (see `resolve_precision`), so no caller can run
    in a precision other than the one `auto` picks for this device.
    """
    used, _ = resolve_precision(precision, device)
    if used == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
