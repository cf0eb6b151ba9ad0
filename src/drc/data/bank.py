"""ImageBank: every image of a dataset decoded once, at the model's resolution, kept as uint8.

Training draws the same few thousand images over and over; decoding them once (2000 images of
64x64 are 24 MB) makes a training step independent of JPEG/PNG decoding. The bank can be saved as
a cache file (`torch.save` of plain tensors and lists, loadable with `weights_only=True`).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import torch

from drc.atomic import atomic_write
from drc.data.images import load_image
from drc.data.manifest import Dataset
from drc.errors import DataError, DrcError

_FORMAT = "drc-image-bank-1"


@dataclass
class ImageBank:
    ids: list[str]
    index: dict[str, int]  # item id -> row of `images`
    images: torch.Tensor  # uint8 (N, 3, H, W)
    # what the bank was built from (image paths, sizes, mtimes); lets a cache be checked, see `cached`
    fingerprint: list[str] = field(default_factory=list)

    @property
    def size(self) -> tuple[int, int]:
        """(H, W) of every image."""
        return int(self.images.shape[2]), int(self.images.shape[3])

    def __len__(self) -> int:
        return len(self.ids)

    @staticmethod
    def from_images(ids: list[str], images: torch.Tensor, fingerprint: list[str] | None = None) -> ImageBank:
        if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"images must be uint8 (N, 3, H, W), got {images.dtype} {tuple(images.shape)}")
        if len(ids) != images.shape[0] or len(set(ids)) != len(ids):
            n, distinct = images.shape[0], len(set(ids))
            raise ValueError(f"need {n} distinct ids, got {len(ids)} ({distinct} distinct)")
        return ImageBank(list(ids), {i: n for n, i in enumerate(ids)}, images, list(fingerprint or []))

    @staticmethod
    def from_dataset(ds: Dataset, size: tuple[int, int], workers: int = 2) -> ImageBank:
        """Decode every item's image at `size` = (H, W), items in the dataset's order."""
        ids = list(ds.items)
        h, w = size
        images = torch.empty((len(ids), 3, h, w), dtype=torch.uint8)

        def decode(n: int) -> None:
            arr = load_image(ds.image_path(ids[n]), (h, w))  # (H, W, 3) uint8
            images[n] = torch.from_numpy(arr).permute(2, 0, 1)

        # threads: PIL releases the GIL while decoding and resizing; each writes its own row
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            list(pool.map(decode, range(len(ids))))
        return ImageBank.from_images(ids, images, _fingerprint(ds, size))

    def get(self, ids: list[str]) -> torch.Tensor:
        """uint8 (B, 3, H, W) for the given item ids, in that order."""
        try:
            rows = [self.index[i] for i in ids]
        except KeyError as e:
            raise DrcError(f"item {e.args[0]!r} is not in the image bank ({len(self)} images)") from None
        return self.images[torch.tensor(rows, dtype=torch.long)]

    def save(self, path: str | Path) -> None:
        """Write the cache file atomically (temporary name, then rename)."""
        payload = {"format": _FORMAT, "ids": self.ids, "images": self.images}
        atomic_write(path, lambda tmp: torch.save({**payload, "fingerprint": self.fingerprint}, tmp))

    @staticmethod
    def load(path: str | Path) -> ImageBank:
        path = Path(path)
        if not path.is_file():
            raise DrcError(f"image bank cache {str(path)!r} not found")
        try:
            d = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # a corrupt or foreign file: any unpickling error
            raise DataError(f"{path}: not a readable image bank ({type(e).__name__})") from None
        if not isinstance(d, dict) or d.get("format") != _FORMAT:
            raise DataError(f"{path}: not an image bank file (expected format {_FORMAT!r})")
        try:
            return ImageBank.from_images(d["ids"], d["images"], d.get("fingerprint"))
        except (KeyError, ValueError, TypeError) as e:
            raise DataError(f"{path}: corrupt image bank ({e})") from None

    @staticmethod
    def cached(ds: Dataset, size: tuple[int, int], path: str | Path, workers: int = 2) -> ImageBank:
        """Load the bank at `path` if it was built from these images at this size; else build and save it."""
        path = Path(path)
        if path.is_file():
            try:
                bank = ImageBank.load(path)
                if bank.fingerprint == _fingerprint(ds, size):
                    return bank
            except DrcError:
                pass  # a stale or broken cache is rebuilt, not an error
        bank = ImageBank.from_dataset(ds, size, workers=workers)
        bank.save(path)
        return bank


def _fingerprint(ds: Dataset, size: tuple[int, int]) -> list[str]:
    """One line per item (id, path, byte size, mtime) plus the size: changes when any image changes."""
    out = [f"size={size[0]}x{size[1]}"]
    for it in ds.items.values():
        st = (ds.root / it.image).stat()
        out.append(f"{it.id}\t{it.image}\t{st.st_size}\t{st.st_mtime_ns}")
    return out
