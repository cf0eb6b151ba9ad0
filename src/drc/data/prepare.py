"""A dataset made ready for training and evaluation: samples, decoded images, the prompt text."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from drc.data.bank import ImageBank
from drc.data.heldout import carve_heldout
from drc.data.manifest import Dataset, load_dataset
from drc.data.samples import Sample, make_samples
from drc.errors import DrcError

if TYPE_CHECKING:
    from drc.config import RunConfig


@dataclass
class Prepared:
    """A dataset made ready for training: samples, decoded images, the prompt text.

    `samples` holds the validation cases too (split "heldout", `drc.data.heldout`); `train_ids` is
    every item of a training user (the tokenizer and the generator train on them), `stage_ids` those
    of them no validation case targets (the composer stages train on them).
    """

    ds: Dataset
    samples: list[Sample]
    bank: ImageBank
    prompt: str
    train_ids: list[str]
    user_of: dict[str, str]
    stage_ids: list[str]

    def split(self, name: str) -> list[Sample]:
        return [s for s in self.samples if s.split == name]


def prompt_for(ds: Dataset, cfg: RunConfig) -> str:
    """The coarse prompt: config, else the dataset's own (`dataset.json`'s "instruction"), else a
    neutral default."""
    return cfg.data.prompt or str(ds.info.get("instruction") or "an image")


def prepare(
    data_dir: str | Path, cfg: RunConfig, cache: Path | None = None, ds: Dataset | None = None
) -> Prepared:
    """Load and validate a dataset (unless `ds` is given), build its samples, decode its images once."""
    ds = ds or load_dataset(data_dir, history_len=cfg.data.history_len)
    samples = make_samples(
        ds,
        history_len=cfg.data.history_len,
        seed=cfg.data.split_seed,
        valid_frac=cfg.data.valid_frac,
        test_frac=cfg.data.test_frac,
    )
    size = (cfg.data.image_height, cfg.data.image_width)
    # decoded images are cached; the cache is rebuilt when any image file or the size changes
    bank = ImageBank.cached(ds, size, cache) if cache is not None else ImageBank.from_dataset(ds, size)
    # Training images: every item that a training user interacted with. Items seen only by
    # valid/test users stay out of the tokenizer, the generator and both stages.
    train_users = {s.user for s in samples if s.split == "train"}
    train_ids: list[str] = []
    user_of: dict[str, str] = {}
    seen: set[str] = set()
    for u in ds.users:
        if u.id not in train_users:
            continue
        for iid in u.history:
            user_of.setdefault(iid, u.id)
            if iid not in seen:
                seen.add(iid)
                train_ids.append(iid)
    if not train_ids:
        raise DrcError(f"{ds.root}: no training users (every user is in the valid or test split)")
    v = cfg.validation
    samples = carve_heldout(ds, samples, cfg.data.history_len, v.share, seed=cfg.data.split_seed)
    # what the composer stages may see: the items some training sample shows (without validation,
    # every item of a training user)
    kept = {i for s in samples if s.split == "train" for i in (*s.history, s.target)}
    stage_ids = [i for i in train_ids if i in kept]
    return Prepared(ds, samples, bank, prompt_for(ds, cfg), train_ids, user_of, stage_ids)
