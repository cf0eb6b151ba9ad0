"""The Janus backend on a GPU, in one go: the tiny random Janus end to end, then a real checkpoint.

    python bench/janus_gpu_check.py --out janus_check/                       # tiny, on CUDA
    python bench/janus_gpu_check.py --out janus_check/ --model-dir /models/Janus-Pro-1B [--low-memory]
    python bench/janus_gpu_check.py --out janus_check/ --device cpu --model-dir TINY   # CPU, tiny model
                                     # (TINY: python tests/backends/janus_tiny.py TINY)

1. tiny: builds a tiny random Janus (tests/backends/janus_tiny.py) and a 24-user sticker benchmark, runs
   `train_run` (Stage 1 + Stage 2, tiny preset, generator.backend=janus) on the device, loads the
   run with `DrcModel.load`, generates; images/s at batch 1 and 8 and peak memory.
2. real (with --model-dir; a folder in transformers' format or DeepSeek's original one): loads it
   through the backend (bf16 on CUDA), then, at the model's own image size:
   - vq: the backend's codes of 8 stickers against Janus's VQ rule (`vq_model.py`, restated in
     drc.backends.janus_reference) and against transformers' raw nearest code; VQ round-trip PSNR;
   - greedy_vs_reference: greedy codes, no draft, cfg 5, for two prompts, from the backend and from
     DeepSeek's generation_inference.py loop (drc.backends.janus_reference): identical or not, the
     share of equal cells and the first differing one;
   - sampling: a plain text-to-image sample (4 images, Janus's settings: OUT/text_to_image.png); how
     closely samples follow a one-hot draft of a sticker (share of cells equal to the draft's code,
     sampled x4 and greedy, against the same share with no draft: OUT/draft_samples.png);
   - images/s and peak memory of `DrcModel.sample` at batch 1 and 8 from that draft;
   - one Stage 2 step of a default DRC composer with the generator's token loss (backward through
     the frozen LLM) at batch 1 and 2 (seconds, peak memory).

Sized for one GPU in about 10 minutes with Janus-Pro-1B (an estimate, not yet measured: ~15 sampling
calls of 576 steps, ~12 s each at ~20 ms a step, plus the load and the tiny part); the 7B takes
longer per step. Everything is written to OUT/results.json (and printed; paste it into
bench/README.md); the images to OUT/*.png. Nothing is downloaded. Peak memory is
torch.cuda.max_memory_allocated on CUDA, the process's peak RSS on CPU.
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
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "backends"))
    from janus_tiny import make_tiny_janus  # a test fixture: tests/backends/janus_tiny.py

    from drc.api import DrcModel
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

PROMPTS = ("a cute cartoon sticker of a smiling cat", "a red apple on a white background")


def share(a: torch.Tensor, b: torch.Tensor) -> float:
    return round(float((a.cpu() == b.cpu()).float().mean()), 4)


def test_images(work: Path, side: int, device: torch.device, n: int = 8) -> torch.Tensor:
    """`(n, 3, side, side)` in [-1, 1]: stickers of the benchmark built in `work` (built here if absent)."""
    from drc.data.benchmarks.stickers import build

    data = work / "stickers"
    if not (data / "images").is_dir():
        build(data, users=24, seed=0)
    files = sorted((data / "images").glob("*.png"))[:n]
    imgs = [np.array(Image.open(f).convert("RGB").resize((side, side), Image.BICUBIC)) for f in files]
    return torch.from_numpy(np.stack(imgs)).permute(0, 3, 1, 2).float().div(127.5).sub(1).to(device)


def vq_check(tok: Any, x: torch.Tensor) -> dict:
    """The backend's codes against Janus's VQ rule (vq_model.py) and transformers' raw nearest code."""
    from drc.backends.janus_reference import raw_codes, reference_codes

    codes = tok.encode(x)
    recon = tok.decode_code(codes)
    return {"images": x.shape[0], "cells": codes.numel(),
            "agree_with_janus_rule": share(codes, reference_codes(tok.vq, x)),
            "agree_with_raw_nearest_code": share(codes, raw_codes(tok.vq, x)),
            "psnr_db": round(float(10 * torch.log10(4 / (recon.float() - x).pow(2).mean())), 2)}  # fmt: skip


def reference_check(gen: Any, device: torch.device) -> dict:
    """Greedy codes, no draft, cfg 5: the backend against DeepSeek's generation_inference.py loop."""
    from drc.backends.janus_reference import reference_generate
    from drc.train.batches import encode_text

    rows = []
    for text in PROMPTS:
        ids, mask = encode_text(text, 1, gen.config.max_text_len, device)
        ours = gen.generate(ids, mask, None, temperature=0.0, cfg_scale=5.0)
        ref = reference_generate(gen.janus, gen.text_tokenizer, gen.prompt.replace("{text}", text),
                                 gen.config.n_visual, 5.0)  # fmt: skip
        diff = (ours.cpu() != ref.cpu()).nonzero()
        rows.append({"prompt": text, "share_equal": share(ours, ref),
                     "first_difference": int(diff[0, 1]) if len(diff) else None})  # fmt: skip
    return {"identical": all(r["first_difference"] is None for r in rows), "prompts": rows}


def sampling_check(tok: Any, gen: Any, x: torch.Tensor, device: torch.device, out: Path, s: Any) -> dict:
    """A plain text-to-image sample (PNG), and how closely samples follow a one-hot draft of a sticker:
    the share of cells whose sampled code is the draft's, against the same share without the draft."""
    from drc.models.instruction import LatentInstruction
    from drc.train.batches import encode_text

    n, res = 4, {"sample": {"temperature": s.temperature, "top_k": s.top_k, "cfg_scale": s.cfg_scale}}
    kw = {"temperature": s.temperature, "top_k": s.top_k, "cfg_scale": s.cfg_scale}
    g = torch.Generator(device=device).manual_seed(0)
    ids, mask = encode_text(PROMPTS[0], n, gen.config.max_text_len, device)
    plain = gen.generate(ids, mask, None, generator=g, **kw)
    g_ = gen.config.grid_w
    pics = ((tok.decode_code(plain.view(n, g_, g_)) + 1) * 127.5).round().clamp(0, 255).byte().cpu()
    save_grid(pics, out / "text_to_image.png")
    res["text_to_image_png"] = "text_to_image.png"
    codes = tok.encode(x[:1]).flatten(1)
    draft = LatentInstruction.hard(codes, gen.config.visual_vocab)
    ids, mask = encode_text("a sticker", n, gen.config.max_text_len, device)
    sampled = gen.generate(ids, mask, draft.repeat_interleave(n), generator=g.manual_seed(1), **kw)
    greedy = gen.generate(ids[:1], mask[:1], draft, temperature=0.0, cfg_scale=s.cfg_scale)
    free = gen.generate(ids, mask, None, generator=g.manual_seed(2), **kw)
    res["draft_following"] = {
        "share_equal_sampled": share(sampled, codes.expand(n, -1)),
        "share_equal_greedy": share(greedy, codes),
        "share_equal_without_draft": share(free, codes.expand(n, -1)),  # chance level for this image
    }
    shown = ((x[:1] + 1) * 127.5).round().clamp(0, 255).byte().cpu()
    drafted = ((tok.decode_code(sampled.view(n, g_, g_)) + 1) * 127.5).round().clamp(0, 255).byte().cpu()
    save_grid(torch.cat([shown, drafted]), out / "draft_samples.png")
    return res


def stage2_step(tok: Any, gen: Any, cfg: Any, codes: torch.Tensor, device: torch.device) -> dict:
    """One Stage 2 step of a default DRC composer with the generator's token loss, batch 1 and 2."""
    from drc.models.composers import build_composer, codebook_of
    from drc.precision import autocast, resolve_precision
    from drc.train.batches import encode_text
    from drc.train.losses import composer_loss

    res: dict[str, Any] = {}
    composer = build_composer("drc", cfg.composer, tok.config.code_dim, gen.config.visual_vocab,
                              gen.config.n_visual, cfg.data.history_len,
                              codebook=codebook_of(tok)).to(device)  # fmt: skip
    opt = torch.optim.AdamW(composer.parameters(), lr=1e-4)
    precision, _ = resolve_precision("auto", device)
    k = cfg.data.history_len
    for b in (1, 2):
        try:
            reset_peak(device)
            hist = tok.embed(codes).expand(b * k, -1, -1).reshape(b, k, gen.config.n_visual, -1).to(device)
            mask = torch.ones(b, k, dtype=torch.bool, device=device)
            ids, tmask = encode_text("a sticker", b, gen.config.max_text_len, device)
            sync(device)
            t0 = time.perf_counter()
            with autocast(device, precision):
                instr = composer(hist, mask, tok.embed(codes).expand(b, -1, -1))
                loss = composer_loss(instr, codes.flatten(1).expand(b, -1), gen, ids, tmask, 1.0).mean()
            opt.zero_grad()
            loss.float().backward()
            opt.step()
            sync(device)
            step = {"seconds": round(time.perf_counter() - t0, 3), "peak_mb": peak_mb(device)}
            res[f"stage2_step_b{b}"] = {**step, "loss": round(float(loss.detach()), 3)}
        except torch.OutOfMemoryError as e:
            res[f"stage2_step_b{b}"] = {"error": f"out of memory: {str(e).splitlines()[0]}"}
    return res


def real_check(model_dir: str, device: torch.device, out: Path, low_memory: bool, work: Path) -> dict:
    from drc.api import DrcModel
    from drc.backends import load_backend
    from drc.config import build_config
    from drc.models.instruction import LatentInstruction
    from drc.run_folder import RunPaths

    res: dict[str, Any] = {"model_dir": model_dir}
    # sample.* resolve to Janus's own settings (cfg 5, temperature 1, no top-k) with this backend
    over = {"device": device.type, "generator.backend": "janus", "generator.model_dir": model_dir,
            "janus.low_memory": low_memory}  # fmt: skip
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
    x = test_images(work, side, device)
    checks = (("vq", lambda: vq_check(tok, x)), ("greedy_vs_reference", lambda: reference_check(gen, device)),
              ("sampling", lambda: sampling_check(tok, gen, x, device, out, cfg.sample)))  # fmt: skip
    for name, fn in checks:
        t0 = time.perf_counter()
        res[name] = fn()
        res[name]["seconds"] = round(time.perf_counter() - t0, 1)
    # generation through DrcModel.sample (what drc generate runs), from a one-hot draft of a sticker
    codes = tok.encode(x[:1])
    cfg.data.image_height = cfg.data.image_width = side
    model = DrcModel(RunPaths(work / "real"), cfg, tok, gen, None, "a sticker", device)
    instr = LatentInstruction.hard(codes.flatten(1), gen.config.visual_vocab)
    for b in (1, 8):
        try:
            res[f"gen_b{b}"] = images_per_s(model, instr, "a sticker", b, device, reps=1)
        except torch.OutOfMemoryError as e:
            res[f"gen_b{b}"] = {"error": f"out of memory: {str(e).splitlines()[0]}"}
    res.update(stage2_step(tok, gen, cfg, codes, device))
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
