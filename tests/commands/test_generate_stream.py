"""`drc generate` and `DrcModel.generate_iter` stream large n batch by batch: every image written as
its batch is done, reproducible per (seed, batch), an interrupted run keeps its images; and the API
reads images of every mode, size and kind (paths, PIL images, arrays)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import drc.api as api
from drc.cli import main
from drc.errors import DrcError


@pytest.fixture(scope="module")
def model(tiny_drc_run: Path) -> api.DrcModel:
    return api.load(tiny_drc_run, device="cpu")


def _inputs(data: Path) -> tuple[list[Path], Path]:
    items = [json.loads(line) for line in (data / "items.jsonl").read_text().splitlines()]
    return [data / it["image"] for it in items[:3]], data / items[-1]["image"]


def _generate(run: Path, data: Path, out: Path, n: int, *extra: str) -> int:
    hist, ref = _inputs(data)
    args = ["generate", "--run", str(run), "--history", *map(str, hist), "--reference", str(ref)]
    return main([*args, "--n", str(n), "--seed", "5", "--out", str(out), *extra])


def _pngs(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.glob("*.png"))}


def test_the_draft_guide_reaches_the_sampler(model: api.DrcModel, tiny_stickers: Path) -> None:
    import dataclasses

    hist, ref = _inputs(tiny_stickers)
    saved = model.config
    try:
        # a strong guide leaves each cell only the codes the composer believes in: the images are
        # the draft's, whatever the seed; without it (the tiny preset) seeds draw other images
        guided = dataclasses.replace(saved.sample, draft_guide=1e4)
        model.config = dataclasses.replace(saved, sample=guided)
        a = model.generate(hist, ref, n=4, seed=0).images
        b = model.generate(hist, ref, n=4, seed=1).images
        assert all(np.array_equal(x, a[0]) for x in [*a, *b])
    finally:
        model.config = saved
    assert saved.sample.draft_guide == 0.0
    free = model.generate(hist, ref, n=4, seed=0).images
    assert not all(np.array_equal(x, free[0]) for x in free)


def test_cli_writes_n_images_in_batches_and_reproduces_them(
    model: api.DrcModel, tiny_drc_run: Path, tiny_stickers: Path, tmp_path: Path, capsys
) -> None:
    bs = model.config.sample.batch_size
    n = 2 * bs + 3  # two full batches and a short one
    out = tmp_path / "gen"
    assert _generate(tiny_drc_run, tiny_stickers, out, n) == 0
    first = _pngs(out)
    assert list(first) == [f"{i:03d}.png" for i in range(n)]
    assert Image.open(out / "000.png").size == (64, 64)
    meta = json.loads((out / "generation.json").read_text())
    assert meta["images"] == list(first) and meta["n"] == n and meta["complete"] is True
    assert meta["seed"] == 5 and meta["batch_size"] == bs
    err = capsys.readouterr().err
    assert "[generate]" in err and f"{n}/{n}" in err  # progress on stderr for more than one batch
    # not all alike: the batches have seeds of their own
    assert len(set(first.values())) > n // 2
    # the same seed again (over the same folder, --force): byte-identical PNGs
    assert _generate(tiny_drc_run, tiny_stickers, out, n, "--force", "--quiet") == 0
    assert _pngs(out) == first
    assert "[generate]" not in capsys.readouterr().err
    # fewer images, same seed: the same first images (a batch does not depend on n)
    few = tmp_path / "few"
    assert _generate(tiny_drc_run, tiny_stickers, few, bs + 1) == 0
    assert _pngs(few) == {k: v for k, v in first.items() if int(k[:3]) <= bs}


def test_cli_interrupted_run_keeps_its_images(
    model: api.DrcModel, tiny_drc_run: Path, tiny_stickers: Path, tmp_path: Path, capsys, monkeypatch
) -> None:
    bs = model.config.sample.batch_size
    n = 3 * bs
    real = api.DrcModel.generate_iter

    def two_batches_then_ctrl_c(self, *a, **kw):
        it = real(self, *a, **kw)

        def gen():
            yield next(it)
            yield next(it)
            raise KeyboardInterrupt

        return gen()

    monkeypatch.setattr(api.DrcModel, "generate_iter", two_batches_then_ctrl_c)
    out = tmp_path / "gen"
    assert _generate(tiny_drc_run, tiny_stickers, out, n) == 130
    err = capsys.readouterr().err
    assert f"kept {2 * bs} of {n} images" in err and "Traceback" not in err
    kept = _pngs(out)
    assert len(kept) == 2 * bs and not list(out.glob(".*"))  # no half-written temporary file
    meta = json.loads((out / "generation.json").read_text())
    assert meta["images"] == list(kept) and meta["complete"] is False
    # without --force the rerun refuses; with it, the kept images come back identical
    monkeypatch.setattr(api.DrcModel, "generate_iter", real)
    assert _generate(tiny_drc_run, tiny_stickers, out, n) == 2
    assert "--force" in capsys.readouterr().err
    assert _generate(tiny_drc_run, tiny_stickers, out, n, "--force") == 0
    again = _pngs(out)
    assert len(again) == n and all(again[k] == v for k, v in kept.items())


def test_generate_iter_matches_generate(model: api.DrcModel, tiny_stickers: Path) -> None:
    hist, ref = _inputs(tiny_stickers)
    bs = 4  # a batch size of the caller's: images then depend on it, and on nothing else
    batches = list(model.generate_iter(hist, ref, n=10, seed=3, batch_size=bs))
    assert [b.start for b in batches] == [0, 4, 8] and [len(b.images) for b in batches] == [4, 4, 2]
    assert all(im.shape == (64, 64, 3) and im.dtype == np.uint8 for b in batches for im in b.images)
    assert batches[0].settings["batch_size"] == bs and batches[0].settings["n"] == 10
    streamed = [im for b in batches for im in b.images]
    whole = model.generate(hist, ref, n=10, seed=3, batch_size=bs)
    assert all(np.array_equal(a, b) for a, b in zip(streamed, whole.images, strict=True))
    assert whole.weights == batches[0].weights and len(whole.weights) == 3
    # the default batch size is the run's, and a short n is the start of a longer one
    short = model.generate(hist, ref, n=2, seed=3)
    longer = model.generate(hist, ref, n=5, seed=3)  # another batch shape: rounding may differ
    assert any(np.array_equal(short.images[i], longer.images[i]) for i in range(2))
    assert not np.array_equal(short.images[0], model.generate(hist, ref, n=2, seed=4).images[0])


def test_generate_refuses_more_than_it_keeps_in_memory(model: api.DrcModel, tiny_stickers: Path) -> None:
    hist, ref = _inputs(tiny_stickers)
    with pytest.raises(DrcError, match=rf"at most {api.MAX_IN_MEMORY}.*generate_iter"):
        model.generate(hist, ref, n=api.MAX_IN_MEMORY + 1)
    with pytest.raises(DrcError, match="at least 1"):
        model.generate(hist, ref, n=0)
    with pytest.raises(DrcError, match="at least one history image"):
        model.generate_iter([], ref, n=3)  # checked at the call, before the first batch is asked for


@pytest.mark.parametrize("side", [512, 40])
def test_load_images_reads_every_mode(
    model: api.DrcModel, side: int, tmp_path: Path, odd_image_files, odd_pil_images
) -> None:
    """Paths and PIL images of every mode, large and small, and arrays: (B, 3, 64, 64), right colours."""
    cases = [(str(p), left, right, tol) for p, _, left, right, tol in odd_image_files(tmp_path, side)]
    cases += [(im, left, right, tol) for _, im, left, right, tol in odd_pil_images(side)]
    arr = np.zeros((side, side, 4), np.uint8)
    arr[:, : side // 2] = (200, 30, 30, 255)  # right half fully transparent: white
    cases += [(arr, (200, 30, 30), (255, 255, 255), 0), (arr[:, :, :3], (200, 30, 30), (0, 0, 0), 0)]
    grey = np.full((side, side), 200 * 257, np.uint16)
    cases += [(grey, (200, 200, 200), (200, 200, 200), 1), (grey > 0, (255,) * 3, (255,) * 3, 0)]
    images = model.load_images([c[0] for c in cases])
    assert images.shape == (len(cases), 3, 64, 64) and str(images.dtype) == "torch.uint8"
    bad = []
    for i, (src, left, right, tol) in enumerate(cases):
        row = images[i, :, 32].T.numpy().astype(int)  # (64, 3): the middle row
        if np.abs(row[8] - left).max() > tol or np.abs(row[56] - right).max() > tol:
            bad.append((i, getattr(src, "mode", src if isinstance(src, str) else "array"), row[8], row[56]))
    assert not bad, bad


def test_load_images_errors_name_the_image(model: api.DrcModel, tmp_path: Path) -> None:
    ok = np.zeros((64, 64, 3), np.uint8)
    with pytest.raises(DrcError, match=r"image 1 \(ndarray\).*shape \(3, 64, 64\)"):
        model.load_images([ok, np.zeros((3, 64, 64), np.uint8)])
    (tmp_path / "bad.png").write_text("not a png")
    with pytest.raises(DrcError, match="bad.png: not an image"):
        model.load_images([ok, tmp_path / "bad.png"])


def test_explain_gives_each_history_image_its_leave_one_out_influence(
    model: api.DrcModel, tiny_stickers: Path
) -> None:
    hist, ref = _inputs(tiny_stickers)
    a, b = hist[0], hist[1]
    infl = model.explain([a, a, b], ref, n=2, seed=3)
    assert infl is not None and len(infl) == 3
    assert all(set(d) == {"pixel", "draft"} and d["pixel"] >= 0 and 0 <= d["draft"] <= 1 for d in infl)
    # leaving out either copy of `a` leaves the same history [a, b]: the same influence, same streams
    assert infl[0] == infl[1]
    assert model.explain([a, a, b], ref, n=2, seed=3) == infl  # seeded
    assert model.explain([a], ref) is None  # nothing to compare one image against
    gen = model.generate([a, a, b], ref, n=3, seed=3, explain=True)
    assert gen.influence == model.explain([a, a, b], ref, n=3, seed=3)
    assert model.generate([a, b], ref, n=1).influence is None


def test_cli_explain_writes_the_influence_beside_the_weights(
    tiny_drc_run: Path, tiny_stickers: Path, tmp_path: Path
) -> None:
    assert _generate(tiny_drc_run, tiny_stickers, tmp_path / "o", 2, "--explain", "--quiet") == 0
    meta = json.loads((tmp_path / "o" / "generation.json").read_text())
    assert len(meta["history_influence"]) == len(meta["history_weights"]) == 3
    assert meta["complete"] is True
