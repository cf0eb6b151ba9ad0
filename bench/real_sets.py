"""The common half of the small real sets (bench/real_icons.py, bench/real_fonts.py): one real image
per (style, semantics) cell, planned and written as the built-in benchmark is.

The plan is the built-in one, as in bench/foreign_sets.py: `choose_held_out` (about 12% of the pairs,
every semantics label held out somewhere), `plan_users` (valid ~10%, test ~25%, histories of 8-12
items, test users 5 seen items then one held-out target) and `add_intruders` (a share of every split
gets 1-2 items of another style). Users share the images (a real set has one image per cell). As in a
user's own folder: item ids are opaque (PREFIX0123, numbered in a shuffled order: the id names neither
user, style nor semantics), users.jsonl is shuffled and user ids are numbered after the shuffle (they
do not tell the split), and dataset.json has no built-in `builder` mark.
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import foreign_sets
from PIL import Image

from drc.atomic import atomic_write_text
from drc.data.benchmarks import common
from drc.data.benchmarks.intruders import DEFAULT_SHARE, add_intruders
from drc.data.manifest import INFO_FILE, ITEMS_FILE, USERS_FILE, Item, User, write_dataset

HISTORY_LEN = 5
LICENSE_FILE = "LICENSES.md"
FILES = (ITEMS_FILE, USERS_FILE, INFO_FILE, common.CONTACT_SHEET, foreign_sets.SAMPLE_SHEET, LICENSE_FILE)


@dataclass
class RealSet:
    """What a real-set builder found: one image and caption per (style, semantics) cell."""

    name: str
    made_by: str
    instruction: str
    id_prefix: str
    styles: list[str]
    semantics: list[str]
    images: dict[tuple[str, str], Image.Image]
    captions: dict[tuple[str, str], str]
    licenses: str  # the LICENSES.md text
    info: dict[str, Any] = field(default_factory=dict)  # extra dataset.json fields


def write(rs: RealSet, out: Path, n_users: int, seed: int, size: int, noisy_share: float) -> dict[str, Any]:
    """Plan users over `rs`'s cells, write the folder; returns its counts."""
    t0 = time.perf_counter()
    held = common.choose_held_out(rs.styles, rs.semantics, seed)
    plans = common.plan_users(rs.styles, rs.semantics, held, n_users, seed, history_len=HISTORY_LEN)
    foreign_sets.prepare_out(out, rs.made_by, FILES)
    (out / "images").mkdir()
    pairs = [(t, s) for t in rs.styles for s in rs.semantics]
    number = common.rng_for(seed, 606).permutation(len(pairs))  # ids in no telling order
    items: list[Item] = []
    id_of: dict[tuple[str, str], str] = {}
    for k, (t, s) in enumerate(pairs):
        iid = f"{rs.id_prefix}{int(number[k]):04d}"
        rs.images[(t, s)].save(out / "images" / f"{iid}.png", format="PNG")
        items.append(Item(iid, f"images/{iid}.png", rs.captions[(t, s)], style=t, semantics=s))
        id_of[(t, s)] = iid
    items.sort(key=lambda i: i.id)
    users = [
        User(f"user{ui:04d}", tuple(id_of[(p.theme, s)] for s in p.semantics), p.split)
        for ui, p in enumerate(plans)
    ]
    users, noisy = add_intruders(users, items, HISTORY_LEN, noisy_share, common.rng_for(seed, 808))
    n_intruders = sum(map(len, noisy.values()))
    # a user's own file is in no split order, and its user ids do not tell the split either
    order = common.rng_for(seed, 909).permutation(len(users))
    users = [User(f"user{k:04d}", users[int(i)].history, users[int(i)].split) for k, i in enumerate(order)]
    info = {
        "name": rs.name,
        "instruction": rs.instruction,
        "made_by": rs.made_by,
        "themes": rs.styles,
        "semantics": rs.semantics,
        "held_out": [list(p) for p in held],
        "seed": seed,
        "size": [size, size],
        "history_len": HISTORY_LEN,
        "noisy_users": {"share": noisy_share, "count": len(noisy), "intruders": n_intruders},
        **rs.info,
    }
    write_dataset(out, items, users, info)
    atomic_write_text(out / LICENSE_FILE, rs.licenses)
    common.contact_sheet(rs.images, rs.styles, rs.semantics, set(held), out / common.CONTACT_SHEET)
    foreign_sets.sample_sheet(out, items, seed)
    split_of = {u.id: u.split for u in users}
    tests = [p for p in plans if p.split == "test"]
    return {
        "name": rs.name,
        "out": str(out),
        "items": len(items),
        "users": len(users),
        "users_per_split": dict(Counter(split_of.values())),
        "styles": len(rs.styles),
        "semantics": len(rs.semantics),
        "held_out_pairs": len(held),
        "pairs": len(pairs),
        "held_out_untested": len(set(held) - {(p.theme, p.semantics[-1]) for p in tests}),
        "samples": sum(max(0, len(u.history) - HISTORY_LEN) for u in users),
        "noisy_users": len(noisy),
        "seconds": round(time.perf_counter() - t0, 1),
    }


def add_args(p: argparse.ArgumentParser) -> None:
    """The options every real-set builder takes (its own source folder option is added by it)."""
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--users", type=int, default=240)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--size", type=int, default=64, help="image side in pixels (64; 128 works too)")
    p.add_argument("--noisy-share", type=float, default=DEFAULT_SHARE)
    p.add_argument("--doc-root", type=Path, default=Path("/usr/share/doc"), help="packages' copyright files")
    p.add_argument("--check", action="store_true", help="after building, verify it with drc's reader")


def check_args(a: argparse.Namespace) -> None:
    """A one-line error for a size or share out of range."""
    if not 16 <= a.size <= 512:
        raise SystemExit(f"--size {a.size}: give 16..512 pixels")
    if not 0.0 <= a.noisy_share <= 1.0:
        raise SystemExit(f"--noisy-share {a.noisy_share}: give a share between 0 and 1")
