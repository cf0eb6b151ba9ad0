"""`drc bench [--json] [--quick] [--device D] [--precision P]`: training and sampling speed of the generator.

Measures, on this machine, in the precision training runs in here (`--precision auto`, the default,
resolves it as training does; see `drc.precision.resolve_precision`):
- precision / precision_reason / auto_precision: the precision used, why, and what `auto` picks;
- matmul_gflops_fp32 / matmul_gflops_bf16: the best of a few square matmuls in each precision;
- matmul_gflops: the peak of the precision used (the one MFU is relative to);
- train_tokens_per_s / train_mfu: pretraining steps of the default generator through the real loop
  (`Trainer`: autocast, backward, clipping, AdamW), sequence positions per second;
- gen_images_per_s_b1 / _b32 / gen_mfu: KV-cache sampling with classifier-free guidance, as the
  evaluation samples;
- kv_speedup: the same sampling recomputing the whole prefix at every step, time ratio;
- peak_mem_mb: peak resident memory (CPU) or peak allocated GPU memory (CUDA);
- threads: PyTorch's intra-op threads (see `drc.threads.configure_threads`).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from collections.abc import Callable
from typing import Any

import torch

from drc.config import OptimConfig, RunConfig, SampleConfig
from drc.loop.trainer import StepOutput, Trainer
from drc.models.generator import Generator, flops_per_token
from drc.models.generator_config import GeneratorConfig
from drc.models.text import ByteTokenizer
from drc.precision import PRECISIONS, autocast, resolve_device, resolve_precision
from drc.runtime import StepRandom
from drc.threads import configure_threads

CAPTION = "a sticker of a cat, love"  # typical caption length (~24 bytes)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _best_time(fn: Callable[[], object], device: torch.device, repeats: int, min_s: float = 0.0) -> float:
    """Best wall time of `repeats` calls (after one warm-up call); best-of filters out other load."""
    fn()
    _sync(device)
    best = float("inf")
    t_start = time.perf_counter()
    i = 0
    while i < repeats or time.perf_counter() - t_start < min_s:
        t0 = time.perf_counter()
        fn()
        _sync(device)
        best = min(best, time.perf_counter() - t0)
        i += 1
    return best


def matmul_gflops(device: torch.device, precision: str, sizes: tuple[int, ...]) -> float:
    """Peak GFLOP/s of square matmuls in `precision` ("bf16" | "fp32"; best over sizes)."""
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    best = 0.0
    for n in sizes:
        a = torch.randn(n, n, device=device, dtype=dtype)
        b = torch.randn(n, n, device=device, dtype=dtype)
        reps = max(2, int(2e10 / n**3)) if device.type == "cpu" else 50

        def run(a=a, b=b, reps=reps) -> None:
            for _ in range(reps):
                a @ b

        t = _best_time(run, device, repeats=3)
        best = max(best, 2 * n**3 * reps / t / 1e9)
    return best


def bench_config(quick: bool) -> tuple[GeneratorConfig, int, int]:
    """(generator config, training batch size, timed training steps)."""
    if quick:
        return GeneratorConfig(n_layer=2, n_head=2, d_model=64).with_visual(64, 4, 4), 8, 3
    run = RunConfig()
    gcfg = run.generator.with_visual(run.tokenizer.codebook_size, 8, 8)  # 64x64 stickers at 8x downsampling
    return gcfg, run.generator_train.batch_size, 12


def bench_train(gcfg: GeneratorConfig, batch: int, steps: int, device: torch.device, precision: str) -> float:
    """Sequence positions per second of pretraining steps through the real training loop."""
    torch.manual_seed(0)
    model = Generator(gcfg).to(device)
    ids, mask = ByteTokenizer().encode([CAPTION] * batch, gcfg.max_text_len)
    ids, mask = ids.to(device), mask.to(device)
    warmup = 3
    stamps: list[float] = []

    def step_fn(step: int, rnd: StepRandom) -> StepOutput:
        _sync(device)
        stamps.append(time.perf_counter())
        tokens = torch.randint(gcfg.visual_vocab, (batch, gcfg.n_visual), generator=rnd.torch_gen).to(device)
        drop = (torch.rand(batch, generator=rnd.torch_gen) < 0.1).to(device)
        return StepOutput(model.loss(ids, mask, None, tokens, drop).mean())

    optim = OptimConfig(steps=warmup + steps + 1, batch_size=batch, warmup=1, log_every=10**6)
    Trainer("bench", {"g": model}, list(model.parameters()), optim, seed=0, device=device,
            precision=precision, progress=False).fit(step_fn)  # fmt: skip
    # step k's time is stamp[k+1] - stamp[k]; take the best half (other processes share this machine)
    times = sorted(b - a for a, b in zip(stamps[warmup:], stamps[warmup + 1 :]))
    t = sum(times[: max(1, len(times) // 2)]) / max(1, len(times) // 2)
    positions = batch * (int(mask.sum(1).max()) + gcfg.n_null + gcfg.n_visual)
    return positions / t


def bench_generate(
    model: Generator, batch: int, device: torch.device, precision: str, use_cache: bool, repeats: int
) -> float:
    """Seconds for one batch of `batch` images (CFG as configured for evaluation)."""
    s = SampleConfig()
    ids, mask = ByteTokenizer().encode([CAPTION] * batch, model.config.max_text_len)
    ids, mask = ids.to(device), mask.to(device)
    gen = torch.Generator(device=device).manual_seed(0)

    def run() -> None:
        with autocast(device, precision):
            model.generate(ids, mask, None, temperature=s.temperature, top_k=s.top_k, cfg_scale=s.cfg_scale,
                           generator=gen, use_cache=use_cache)  # fmt: skip

    return _best_time(run, device, repeats)


def _sig(x: float, digits: int = 3) -> float:
    """Round to significant digits (an MFU of 0.0004 must not print as 0.0)."""
    return float(f"{x:.{digits}g}")


def peak_mem_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def run_bench(quick: bool, device: torch.device, precision: str = "auto") -> dict[str, Any]:
    used, reason = resolve_precision(precision, device)
    auto, auto_reason = resolve_precision("auto", device)
    if precision != "auto":
        reason = f"{reason}; auto would pick {auto} ({auto_reason})"
    precision = used
    gcfg, batch, steps = bench_config(quick)
    sizes = (256, 512) if quick else (512, 1024, 2048)
    peaks = {p: matmul_gflops(device, p, sizes) for p in ("fp32", "bf16")}
    peak = peaks[used]  # MFU against what this precision can reach here, not the faster one's peak
    train_tps = bench_train(gcfg, batch, steps, device, precision)
    torch.manual_seed(0)
    model = Generator(gcfg).to(device).eval()
    reps = 2 if quick else 3
    t1 = bench_generate(model, 1, device, precision, True, reps)
    t32 = bench_generate(model, 32, device, precision, True, reps)
    kv_batch = 8
    t_kv = bench_generate(model, kv_batch, device, precision, True, reps)
    t_nokv = bench_generate(model, kv_batch, device, precision, False, 1)
    n_text = len(CAPTION.encode())
    # generation FLOPs: 2 rows (cond + uncond) per image, each position attends to ~half the sequence
    ctx = n_text + gcfg.n_null + gcfg.n_visual // 2
    gen_flops_per_image = 2 * (n_text + gcfg.n_visual) * flops_per_token(gcfg, training=False, context=ctx)
    peak_flops = peak * 1e9
    return {
        "device": str(device),
        "precision": used,
        "precision_reason": reason,
        "auto_precision": auto,
        "threads": torch.get_num_threads(),
        "params_m": round(sum(p.numel() for p in model.parameters()) / 1e6, 2),
        "matmul_gflops": round(peak, 1),
        "matmul_gflops_fp32": round(peaks["fp32"], 1),
        "matmul_gflops_bf16": round(peaks["bf16"], 1),
        "train_tokens_per_s": round(train_tps, 1),
        "train_mfu": _sig(train_tps * flops_per_token(gcfg, training=True) / peak_flops),
        "gen_images_per_s_b1": round(1 / t1, 2),
        "gen_images_per_s_b32": round(32 / t32, 2),
        "gen_mfu": _sig(32 / t32 * gen_flops_per_image / peak_flops),
        "kv_speedup": round(t_nokv / t_kv, 2),
        "peak_mem_mb": round(peak_mem_mb(device), 1),
    }


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="drc bench", description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    ap.add_argument("--quick", action="store_true", help="tiny sizes (seconds; for tests)")
    ap.add_argument("--device", default="auto", help="auto | cpu | cuda")
    ap.add_argument("--precision", default="auto", choices=PRECISIONS, help="auto (default) | bf16 | fp32")
    args = ap.parse_args(argv)
    device = resolve_device(args.device)
    configure_threads()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    res = run_bench(args.quick, device, args.precision)
    for k, v in res.items():
        print(f"{k:>22}: {v}", file=sys.stderr if args.json else sys.stdout)
    if args.json:
        print(json.dumps(res))
    return 0
