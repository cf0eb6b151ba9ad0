"""Uploaded image bytes -> a checked, normalized PNG, or an `UploadError` with a 4xx status.

The checks run in the order that costs least first: byte size, then the format and the declared
pixel count from the header alone (`probe`: a decompression bomb is refused before a single pixel is
decoded, and the route sums a whole request's pixels against a budget), then a full decode (`decode`,
in the service's small decode pool; a truncated or corrupt file fails here). What is stored is a
re-encoded RGB PNG: it carries no metadata of the upload, and what the service hands back is always a
well-formed image.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Iterator
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

from drc.data.images import to_rgb
from drc.serve.config import Limits

FORMATS = ("PNG", "JPEG", "WEBP", "GIF", "BMP")


class UploadError(Exception):
    """A bad upload; `status` is the HTTP status to answer with, the message is one line."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class CheckedImage:
    png: bytes  # RGB PNG bytes (what is stored)
    width: int
    height: int


def check_upload(data: bytes, limits: Limits, name: str = "upload") -> CheckedImage:
    """Check one uploaded image in full (header, then decode); raise UploadError (413, 415 or 422)."""
    probe(data, limits, name)
    return decode(data, limits, name)


def probe(data: bytes, limits: Limits, name: str = "upload") -> int:
    """The cheap checks: byte size, then format and declared size from the header alone (PIL opens
    lazily: `.size` is read before any pixel is decoded). Returns the declared pixel count."""
    if len(data) == 0:
        raise UploadError(422, f"{name}: empty file")
    if len(data) > limits.max_upload_bytes:
        raise UploadError(
            413, f"{name}: {len(data)} bytes, over the limit of {limits.max_upload_bytes} bytes per image"
        )
    with _pil_errors(name, limits):
        im = Image.open(io.BytesIO(data))
        if im.format not in FORMATS:
            raise UploadError(415, f"{name}: {im.format} images are not accepted; use {', '.join(FORMATS)}")
        w, h = im.size
        if w * h > limits.max_pixels:
            raise UploadError(
                413, f"{name}: declares {w}x{h} = {w * h} pixels, over the limit of {limits.max_pixels}"
            )
        if w < 1 or h < 1:
            raise UploadError(422, f"{name}: image has no pixels ({w}x{h})")
        return w * h


def decode(data: bytes, limits: Limits, name: str = "upload") -> CheckedImage:
    """The full decode of an image `probe` passed: a truncated or corrupt stream fails here."""
    with _pil_errors(name, limits):
        im = Image.open(io.BytesIO(data))
        im.load()
        rgb = to_rgb(im)
    side = limits.store_max_side
    if max(rgb.size) > side:
        rgb.thumbnail((side, side), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    rgb.save(buf, format="PNG", optimize=False)
    return CheckedImage(buf.getvalue(), rgb.width, rgb.height)


@contextlib.contextmanager
def _pil_errors(name: str, limits: Limits) -> Iterator[None]:
    """PIL's exceptions -> UploadError with a one-line message (PIL's own text is not passed on)."""
    try:
        with warnings.catch_warnings():
            # PIL only warns between its own limit and twice that; here any bomb is an error
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            yield
    except UploadError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise UploadError(
            413,
            f"{name}: declares more pixels than PIL decodes safely, over the limit of {limits.max_pixels} "
            "(a decompression bomb?)",
        ) from e
    except UnidentifiedImageError as e:
        raise UploadError(415, f"{name}: not an image (accepted: {', '.join(FORMATS)})") from e
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        raise UploadError(422, f"{name}: truncated or corrupt image") from e
