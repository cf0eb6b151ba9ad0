"""The public Python API: train a run, load it, generate, evaluate. The CLI is a thin layer over it.

Example::

    import drc.api as drc

    drc.train("data/stickers", "runs/drc", preset="tiny")
    model = drc.load("runs/drc")
    out = model.generate(history=["a.png", "b.png", "c.png"], reference="ref.png", n=4, seed=0)
    out.images[0]           # (H, W, 3) uint8
    out.weights             # importance weight of each history image
    for batch in model.generate_iter(["a.png", "b.png", "c.png"], "ref.png", n=100_000, seed=0):
        batch.start, batch.images   # index of the first image, the batch's images (memory stays flat)
    report = drc.evaluate("runs/drc", "data/stickers")
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from PIL import Image

from drc.config import RunConfig, load_yaml
from drc.data.images import array_to_image, fit, load_image, unit_to_pixels
from drc.errors import DrcError
from drc.influence import influence, leave_one_out
from drc.models.composers import Composer, composer_for
from drc.models.inference import condition, encode_images, pad_history
from drc.models.instruction import LatentInstruction
from drc.precision import resolve_device
from drc.run_folder import RunInfo, RunPaths
from drc.seeding import image_generators, images_key
from drc.threads import configure_threads

if TYPE_CHECKING:
    from drc.backends.base import TokenGenerator, VisualTokenizer

ImageLike = str | Path | np.ndarray | Image.Image

# generate() returns every image in one list; above this many, stream with DrcModel.generate_iter
MAX_IN_MEMORY = 1024
EXPLAIN_IMAGES = 4  # images per leave-one-out variant behind `explain` (each variant costs as many)

__all__ = ["DrcModel", "Generation", "MAX_IN_MEMORY", "load", "train", "evaluate"]

def train(
    data: str | Path, out: str | Path, method: str = "drc", preset: str = "default", **kw: Any
) -> RunPaths:
    """Train (or resume) a run; see `drc.pipeline.train_run` for the options."""
    from drc.pipeline import train_run

    return train_run(data, out, method=method, preset=preset, **kw)


@dataclass
class Generation:
    """Images generated for one (history, reference) input."""

    images: list[np.ndarray]  # n images, each (H, W, 3) uint8
    weights: list[float]  # importance weight of each history image (oldest first)
    settings: dict[str, Any] = field(default_factory=dict)
    start: int = 0  # index of images[0] among all the images asked for (a batch of generate_iter)
    # with explain=True: per history image {"pixel", "draft"} leave-one-out influence (drc.influence)
    influence: list[dict[str, float]] | None = None


class DrcModel:
    """A trained run, ready to generate: tokenizer + composer + generator."""

    def __init__(
        self, paths: RunPaths, cfg: RunConfig, tokenizer: VisualTokenizer, generator: TokenGenerator,
        composer: Composer, prompt: str, device: torch.device,
    ) -> None:  # fmt: skip
        self.paths, self.config = paths, cfg
        self.tokenizer, self.generator, self.composer = tokenizer, generator, composer
        self.prompt = prompt  # the run's coarse prompt: the text when generate is given none
        self.device = device

    @property
    def image_size(self) -> tuple[int, int]:
        return (self.config.data.image_height, self.config.data.image_width)

    @classmethod
    def load(cls, run: str | Path, device: str = "auto") -> DrcModel:
        from drc.backends import load_backend
        from drc.pretrained import resolve_run
        from drc.weights import load_module_weights

        paths = RunPaths(resolve_run(run)[0])  # a folder, or a shipped run's name
        if not paths.root.is_dir():
            raise DrcError(f"{paths.root}: not a folder")
        if not paths.config.is_file():
            raise DrcError(f"{paths.root}: not a drc run (config.yaml missing)")
        if not (paths.composer / "model.safetensors").is_file():
            raise DrcError(
                f"{paths.root}: run is not finished (composer/model.safetensors missing); rerun drc train"
            )
        cfg = load_yaml(RunConfig, paths.config)
        dev = resolve_device(device if device != "auto" else cfg.device)
        configure_threads()  # sampling is CPU-bound here too: every usable core (see runtime)
        # the run's backend: the built-in tokenizer + generator from the run folder, or a pretrained
        # model (generator.backend=janus) from generator.model_dir with the run's adapters
        backend = load_backend(cfg, dev, run=paths.root)
        tokenizer, generator = backend.tokenizer, backend.generator
        composer = composer_for(cfg, tokenizer, generator)
        load_module_weights(composer, paths.composer)
        composer = composer.to(dev).eval()
        info = RunInfo.load(paths.info) if paths.info.is_file() else None
        prompt = (info.prompt if info else "") or cfg.data.prompt or "an image"
        return cls(paths, cfg, tokenizer, generator, composer, prompt, dev)

    # ------------------------------------------------------------------ building blocks
    @torch.no_grad()
    def tokens(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 (B, 3, H, W) -> visual tokens long (B, N) (on the CPU)."""
        return encode_images(
            self.tokenizer, images, device=self.device, precision=self.config.precision
        ).flatten(1)

    @torch.no_grad()
    def compose(
        self, hist_tokens: torch.Tensor, hist_mask: torch.Tensor, ref_tokens: torch.Tensor
    ) -> LatentInstruction:
        """(B, k, N) history tokens + (B, k) mask + (B, N) reference tokens -> the latent instruction."""
        return condition(
            self.composer,
            self.tokenizer,
            hist_tokens.to(self.device),
            hist_mask.to(self.device),
            ref_tokens.to(self.device),
        )

    @torch.no_grad()
    def sample(
        self,
        instr: LatentInstruction,
        texts: Sequence[str],
        seed: int = 0,
        generators: list[torch.Generator] | None = None,
    ) -> torch.Tensor:
        """Generate one image per instruction row: uint8 (B, 3, H, W).

        Seeded by `seed`, or by `generators` (one per row: a row's image then does not depend on
        the other rows of the batch, which the service's batching needs).
        """
        from drc.models.text import ByteTokenizer

        s = self.config.sample
        if s.renderer == "draft":
            return self.decode(instr.argmax())
        from drc.models.token_model import draft_guide
        from drc.precision import autocast

        ids, mask = ByteTokenizer().encode(list(texts), self.generator.config.max_text_len)
        gen = generators if generators is not None else torch.Generator(device="cpu").manual_seed(seed)
        # the precision the generator was pretrained in (bf16 where the machine has it): sampling in
        # float32 on an AMX CPU took twice as long for the same images' worth of accuracy
        with autocast(self.device, self.config.precision):
            idx = self.generator.generate(
                ids.to(self.device),
                mask.to(self.device),
                instr.sharpen(s.draft_temperature),
                temperature=s.temperature,
                top_k=s.top_k,
                cfg_scale=s.cfg_scale,
                generator=gen,
                guide=draft_guide(instr, s.draft_guide),
            )
        return self.decode(idx)

    @torch.no_grad()
    def decode(self, idx: torch.Tensor) -> torch.Tensor:
        """Visual tokens (B, N) long -> uint8 images (B, 3, H, W)."""
        h, w = self.tokenizer.grid(*self.image_size)
        images = self.tokenizer.decode_code(idx.view(-1, h, w))
        return unit_to_pixels(images)

    # ------------------------------------------------------------------ the user-facing call
    def load_images(self, images: Sequence[ImageLike]) -> torch.Tensor:
        """Paths / arrays / PIL images -> uint8 (B, 3, H, W) at the run's resolution.

        Paths and PIL images may be of any size and any mode (transparency composited on white, the
        first frame of an animation); arrays are (H, W), (H, W, 3) or (H, W, 4), any size, uint8
        as is, uint16 on its 16-bit range, other dtypes on 0..255 (see `array_to_image`).
        """
        out = []
        for i, im in enumerate(images):
            if isinstance(im, (str, Path)):
                arr = load_image(im, self.image_size)
            else:
                try:
                    pil = im if isinstance(im, Image.Image) else array_to_image(im)
                    arr = np.array(fit(pil, self.image_size), dtype=np.uint8)
                except (OSError, ValueError, TypeError) as e:
                    what = "PIL image" if isinstance(im, Image.Image) else type(im).__name__
                    msg = str(e).splitlines()[0] if str(e) else type(e).__name__
                    raise DrcError(f"image {i} ({what}): cannot be read as an image ({msg})") from None
            out.append(torch.from_numpy(arr).permute(2, 0, 1))
        return torch.stack(out)

    def _condition(
        self, history: Sequence[ImageLike], reference: ImageLike, prompt: str | None
    ) -> tuple[LatentInstruction, str, list[float], str]:
        """Load and encode the inputs: the (1, ...) latent instruction, the text, the history weights
        and the request's key (`drc.seeding`)."""
        if len(history) == 0:
            raise DrcError("generate needs at least one history image")
        k = self.config.data.history_len
        hist_img = self.load_images(list(history)[-k:])  # the most recent k images, as in training
        ref_img = self.load_images([reference])
        hist_tok = self.tokens(hist_img)  # (L, N)
        ref_tok = self.tokens(ref_img)  # (1, N)
        L = hist_tok.shape[0]
        padded, mask = pad_history([hist_tok], k)  # right-aligned (most recent image last), as in training
        instr = self.compose(padded, mask, ref_tok)
        text = prompt if prompt is not None else self.prompt
        weights = [] if instr.weights is None else [round(float(w), 4) for w in instr.weights[0, k - L :]]
        return instr, text, weights, images_key(hist_img, ref_img[0], text)

    def generate_iter(
        self, history: Sequence[ImageLike], reference: ImageLike, prompt: str | None = None, n: int = 4,
        seed: int = 0, batch_size: int | None = None,
    ) -> Iterator[Generation]:  # fmt: skip
        """Stream n images batch by batch: one `Generation` per batch, in order, memory flat in n.

        Each yielded Generation holds that batch's images (`start` is the index of its first one
        among the n; every batch has `batch_size` images but the last), the history weights and the
        settings. Image i is sampled from its own random stream, keyed by (seed, the inputs, i)
        (`drc.seeding`: the stream `drc serve` and `drc eval` draw for the same inputs), in batch
        i // batch_size (default: the run's `sample.batch_size`), always a full batch (a short last
        batch is padded and cut): the same seed gives the same images however many are asked for.
        The inputs are loaded and checked here, before the first batch is asked for.
        """
        if n < 1:
            raise DrcError(f"n must be at least 1, got {n}")
        bs = self.config.sample.batch_size if batch_size is None else batch_size
        if bs < 1:
            raise DrcError(f"batch_size must be at least 1, got {bs}")
        instr, text, weights, key = self._condition(history, reference, prompt)
        settings = {
            "prompt": text,
            "n": n,
            "seed": seed,
            "run": str(self.paths.root),
            **_asdict(self.config.sample),
            "batch_size": bs,
        }
        return self._batches(instr.repeat_interleave(bs), text, weights, settings, n, seed, key, bs)

    def _batches(
        self,
        rows: LatentInstruction,
        text: str,
        weights: list[float],
        settings: dict[str, Any],
        n: int,
        seed: int,
        key: str,
        bs: int,
    ) -> Iterator[Generation]:
        for start in range(0, n, bs):
            gens = image_generators(seed, key, range(start, start + bs))
            images = self.sample(rows, [text] * bs, generators=gens)  # uint8 (bs, 3, H, W)
            count = min(bs, n - start)
            yield Generation([im.permute(1, 2, 0).numpy() for im in images[:count]], weights, settings, start)

    def generate(
        self, history: Sequence[ImageLike], reference: ImageLike, prompt: str | None = None, n: int = 4,
        seed: int = 0, batch_size: int | None = None, explain: bool = False,
    ) -> Generation:  # fmt: skip
        """n images (each (H, W, 3) uint8) in the style of `history` (oldest first) showing what
        `reference` shows, all in memory: at most MAX_IN_MEMORY; stream more with `generate_iter`,
        which gives the same images for the same arguments. `explain`: also the leave-one-out
        influence of each history image (`DrcModel.explain` on the first min(n, 4) images' seeds)."""
        if n > MAX_IN_MEMORY:
            raise DrcError(
                f"generate keeps all images in memory and makes at most {MAX_IN_MEMORY}, not {n}; "
                "stream them batch by batch with DrcModel.generate_iter (or `drc generate --n`)"
            )
        images: list[np.ndarray] = []
        weights: list[float] = []
        settings: dict[str, Any] = {}
        for batch in self.generate_iter(history, reference, prompt, n=n, seed=seed, batch_size=batch_size):
            images += batch.images
            weights, settings = batch.weights, batch.settings
        infl = None
        if explain:
            infl = self.explain(history, reference, prompt, n=min(n, EXPLAIN_IMAGES), seed=seed)
        return Generation(images, weights, settings, influence=infl)

    def explain(
        self,
        history: Sequence[ImageLike],
        reference: ImageLike,
        prompt: str | None = None,
        n: int = EXPLAIN_IMAGES,
        seed: int = 0,
    ) -> list[dict[str, float]] | None:
        """Leave-one-out influence of each history image (oldest first; the most recent k are used):
        {"pixel", "draft"} per image (`drc.influence`), None with a single image.

        n images are rendered with all k images and n with each one left out, image i of every
        variant from the same random stream, so a variant differs only by its history.
        """
        k = self.config.data.history_len
        hist = list(history)[-k:]
        if len(hist) < 2:
            return None
        if n < 1:
            raise DrcError(f"n must be at least 1, got {n}")
        hist_img, ref_img = self.load_images(hist), self.load_images([reference])
        hist_tok = self.tokens(hist_img)  # (L, N)
        ref_tok = self.tokens(ref_img)  # (1, N)
        variants = [hist_tok, *leave_one_out(hist_tok)]
        padded, mask = pad_history(variants, k)
        instr = self.compose(padded, mask, ref_tok.expand(len(variants), -1))
        text = prompt if prompt is not None else self.prompt
        key = images_key(hist_img, ref_img[0], text)
        gens = [g for _ in variants for g in image_generators(seed, key, range(n))]
        images = self.sample(instr.repeat_interleave(n), [text] * len(gens), generators=gens)
        blocks = images.view(len(variants), n, *images.shape[1:])
        return influence(blocks[0], instr.draft[0], list(blocks[1:]), list(instr.draft[1:]))


def _asdict(obj: Any) -> dict[str, Any]:
    from drc.config import to_dict

    return to_dict(obj)


def load(run: str | Path, device: str = "auto") -> DrcModel:
    """Load a finished run for generation."""
    return DrcModel.load(run, device)


def evaluate(
    run: str | Path, data: str | Path, encoder: str | Path | None = None, **kw: Any
) -> dict[str, Any]:
    """Evaluate a run on a dataset's test users; returns the metrics dict (also written to RUN/eval)."""
    from drc.eval.evaluate import evaluate_run

    result = evaluate_run(load(run), data, encoder=encoder, **kw)
    out = Path(run) / "eval"
    out.mkdir(exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(result["metrics"], indent=1))
    return result
