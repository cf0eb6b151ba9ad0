"""The Janus backend on a GPU, in one go: the tiny random Janus end to end, then a real checkpoint.

    python bench/janus_gpu_check.py --out janus_check/                       # tiny, on CUDA
    python bench/janus_gpu_check.py --out janus_check/ --model-dir /models/Janus-Pro-1B [--low-memory]
    python bench/janus_gpu_check.py --out janus_check/ --device cpu           # the same on CPU (slow
                                                                              # for a real model)

1. tiny: builds a tiny random Janus (drc.backends.janus_tiny) and a 24-user sticker benchmark, runs
   `train_run` (Stage 1 + Stage 2, tiny preset, generator.backend=janus) on the device, loads the
   run with `DrcModel.load`, generates; images/s at batch 1 and 8 and peak memory.
2. real (with --model-dir): loads the checkpoint through the backend (bf16 on CUDA); encodes and
   decodes a sticker at the model's size; generates from a one-hot draft of it with guidance at
   batch 1 and 8 (images/s, peak memory, a PNG of the samples); one Stage 2 step of a default DRC
   composer with the generator's token loss on (gen_weight 1, backward through the frozen LLM) at
   batch 1 and 2 (seconds, peak memory).

Everything is written to OUT/results.json (and printed); the samples to OUT/*.png. Nothing is
downloaded. Peak memory is torch.cuda.max_memory_allocated on CUDA, the process's peak RSS on CPU.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image


def peak_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def images_per_s(model: Any, instr: Any, text: str, batch: int, device: torch.device, reps: int = 2) -> dict:
    """Best of `reps` timed `DrcModel.sample` calls (after one warm-up) at `batch` images."""
    rows = instr.repeat_interleave(batch)
    model.sample(rows, [text] * batch, seed=0)  # warm-up (kernels, caches)
    reset_peak(device)
    best = float("inf")
    for r in range(reps):
        sync(device)
        t0 = time.perf_counter()
        out = model.sample(rows, [text] * batch, seed=r + 1)
        sync(device)
        best = min(best, time.perf_counter() - t0)
    return {"images_per_s": round(batch / best, 3), "seconds": round(best, 3), "peak_mb": peak_mb(device),
            "shape": list(out.shape)}  # fmt: skip


def save_grid(images: torch.Tensor, path: Path) -> None:
    """uint8 (B, 3, H, W) -> one PNG row."""
    row = torch.cat(list(images), dim=2).permute(1, 2, 0).numpy()
    Image.fromarray(np.ascontiguousarray(row)).save(path)


# --------------------------------------------------------------------------- 1. tiny, end to end


def tiny_check(device: torch.device, out: Path, work: Path) -> dict:
    from drc.api import DrcModel
    from drc.backends.janus_tiny import make_tiny_janus
    from drc.data.benchmarks.stickers import build
    from drc.pipeline import train_run

    res: dict[str, Any] = {}
    t0 = time.perf_counter()
    tiny = make_tiny_janus(work / "tiny_janus")
    data = work / "stickers"
    build(data, users=24, seed=0)
    res["setup_s"] = round(time.perf_counter() - t0, 1)
    reset_peak(device)
    t0 = time.perf_counter()
    overrides = {
        "device": device.type,
        "generator.backend": "janus",
        "generator.model_dir": str(tiny),
        "stage2.n_augment": 2,
        "stage1.gen_weight": 1.0,  # the LLM path in the loss, both stages
        "stage2.gen_weight": 1.0,
    }
    run = train_run(data, work / "run", preset="tiny", overrides=overrides, progress=False)
    res["train_s"] = round(time.perf_counter() - t0, 1)
    res["train_peak_mb"] = peak_mb(device)
    info = json.loads((run.root / "run.json").read_text())
    res["timings_s"] = info["timings_s"]
    hist = [json.loads(x) for x in (run.root / "stages/stage2/history.jsonl").read_text().splitlines()]
    res["stage2_loss_first_last"] = [round(hist[0]["loss"], 3), round(hist[-1]["loss"], 3)]
    model = DrcModel.load(run.root, device=device.type)
    users = [json.loads(x) for x in (data / "users.jsonl").read_text().splitlines()]
    items = {json.loads(x)["id"]: json.loads(x) for x in (data / "items.jsonl").read_text().splitlines()}
    history = [data / items[i]["image"] for i in users[0]["history"][-5:]]
    reference = data / items[users[-1]["history"][-1]]["image"]
    gen = model.generate(history, reference, n=4, seed=0)
    res["generated"] = [list(im.shape) for im in gen.images]
    grid = torch.stack([torch.from_numpy(im).permute(2, 0, 1) for im in gen.images])
    save_grid(grid, out / "tiny_samples.png")
    instr, text, _ = model._condition(history, reference, None)
    for b in (1, 8):
        res[f"gen_b{b}"] = images_per_s(model, instr, text, b, device)
    return res


# --------------------------------------------------------------------------- 2. a real checkpoint


def real_check(model_dir: str, device: torch.device, out: Path, low_memory: bool, work: Path) -> dict:
    from drc.api import DrcModel
    from drc.backends import load_backend
    from drc.config import build_config
    from drc.models.composers import build_composer
    from drc.models.conditioning import LatentInstruction
    from drc.precision import autocast, resolve_precision
    from drc.run_folder import RunPaths
    from drc.train.batches import encode_text
    from drc.train.losses import composer_loss

    res: dict[str, Any] = {"model_dir": model_dir}
    over = {"device": device.type, "generator.backend": "janus", "generator.model_dir": model_dir,
            "janus.low_memory": low_memory, "sample.cfg_scale": 5.0, "sample.temperature": 1.0,
            "sample.top_k": 0}  # fmt: skip
    cfg = build_config(overrides=over)
    reset_peak(device)
    t0 = time.perf_counter()
    backend = load_backend(cfg, device, progress=True)
    sync(device)
    res["load_s"] = round(time.perf_counter() - t0, 1)
    res["load_peak_mb"] = peak_mb(device)
    tok, gen = backend.tokenizer, backend.generator
    side = tok.config.image_size
    tok.out_size = (side, side)  # work at the model's own size
    res.update(image_size=side, n_visual=gen.config.n_visual, vocab=gen.config.visual_vocab,
               code_dim=tok.config.code_dim, dtype=str(gen.dtype),
               parameters_m=round(sum(p.numel() for p in gen.parameters()) / 1e6, 2))  # fmt: skip
    # a sticker from the tiny benchmark (or a synthetic image), at the model's size
    sticker = next((work / "stickers" / "images").glob("*.png"), None)
    if sticker is not None:
        img = Image.open(sticker).convert("RGB").resize((side, side), Image.BICUBIC)
    else:
        img = Image.fromarray(np.uint8(np.indices((side, side)).sum(0) % 256)).convert("RGB")
    x = torch.from_numpy(np.array(img)).permute(2, 0, 1)[None].float().div(127.5).sub(1).to(device)
    codes = tok.encode(x)
    recon = tok.decode_code(codes)
    res["vq_psnr_db"] = round(float(10 * torch.log10(4 / (recon.float() - x).pow(2).mean())), 2)
    # generation through DrcModel.sample (what drc generate runs), from a one-hot draft of the sticker
    cfg.data.image_height = cfg.data.image_width = side
    model = DrcModel(RunPaths(work / "real"), cfg, tok, gen, None, "a sticker", device)
    instr = LatentInstruction.hard(codes.flatten(1), gen.config.visual_vocab)
    for b in (1, 8):
        try:
            res[f"gen_b{b}"] = images_per_s(model, instr, "a sticker", b, device, reps=1)
        except torch.OutOfMemoryError as e:
            res[f"gen_b{b}"] = {"error": f"out of memory: {str(e).splitlines()[0]}"}
    samples = model.sample(instr.repeat_interleave(4), ["a sticker"] * 4, seed=0)
    shown = ((x + 1) * 127.5).round().clamp(0, 255).byte().cpu()  # the sticker the draft came from
    save_grid(torch.cat([shown, samples]), out / "real_samples.png")
    # one Stage 2 step of a default DRC composer with the generator's token loss (gen_weight 1)
    composer = build_composer("drc", cfg.composer, tok.config.code_dim, gen.config.visual_vocab,
                              gen.config.n_visual, cfg.data.history_len).to(device)  # fmt: skip
    opt = torch.optim.AdamW(composer.parameters(), lr=1e-4)
    precision, _ = resolve_precision("auto", device)
    for b in (1, 2):
        try:
            reset_peak(device)
            hist = tok.embed(codes).expand(b * cfg.data.history_len, -1, -1)
            hist = hist.reshape(b, cfg.data.history_len, *hist.shape[1:]).to(device)
            mask = torch.ones(b, cfg.data.history_len, dtype=torch.bool, device=device)
            ids, tmask = encode_text("a sticker", b, gen.config.max_text_len, device)
            target = codes.flatten(1).expand(b, -1)
            sync(device)
            t0 = time.perf_counter()
            with autocast(device, precision):
                loss = composer_loss(composer(hist, mask, tok.embed(codes).expand(b, -1, -1)), target, gen,
                                     ids, tmask, 1.0).mean()  # fmt: skip
            opt.zero_grad()
            loss.float().backward()
            opt.step()
            sync(device)
            seconds = round(time.perf_counter() - t0, 3)
            step = {"seconds": seconds, "peak_mb": peak_mb(device), "loss": round(float(loss), 3)}
            res[f"stage2_step_b{b}"] = step
        except torch.OutOfMemoryError as e:
            res[f"stage2_step_b{b}"] = {"error": f"out of memory: {str(e).splitlines()[0]}"}
    return res


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True, help="folder for results.json and the sample PNGs")
    p.add_argument("--device", default="cuda")
    p.add_argument("--model-dir", default=None, help="a local Janus / Janus-Pro folder (transformers format)")
    p.add_argument("--low-memory", action="store_true", help="janus.low_memory=true for the real checkpoint")
    p.add_argument("--skip-tiny", action="store_true")
    a = p.parse_args()
    device = torch.device(a.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("no CUDA device here; pass --device cpu", file=sys.stderr)
        return 2
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    import transformers

    result: dict[str, Any] = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.machine(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
    }
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        parts = [] if a.skip_tiny else [("tiny", lambda: tiny_check(device, out, work))]
        if a.model_dir:
            parts.append(("real", lambda: real_check(a.model_dir, device, out, a.low_memory, work)))
        for name, fn in parts:
            t0 = time.perf_counter()
            try:
                result[name] = fn()
            except Exception as e:  # noqa: BLE001 - one part failing must not hide the other's numbers
                trace = traceback.format_exc()[-2000:]
                result[name] = {"error": f"{type(e).__name__}: {e}", "traceback": trace}
            result[name]["total_s"] = round(time.perf_counter() - t0, 1)
            (out / "results.json").write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))
    return 0 if all("error" not in result.get(k, {}) for k in ("tiny", "real")) else 1


if __name__ == "__main__":
    sys.exit(main())
