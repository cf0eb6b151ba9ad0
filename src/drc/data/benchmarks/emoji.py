"""The vendor-emoji benchmark: `drc data emoji --out DIR [--users N] [--size 128] [--cache DIR] ...`.

Real artwork: the same concept (a crocodile, a printer, a banana, ...) drawn by several design teams,
from the vendor emoji sets published on npm as `@iconify-json/*` (fetched once with `npm pack` into a
cache; `iconify.py`). STYLE is the vendor; SEMANTICS is the concept, the icon name the vendors share
(normalised: "alarm-clock" and "alarmclock" are one concept). The concepts are a curated list of
objects, animals, plants and food that look different from each other (no faces, people, flags,
keycaps, letters or skin-tone variants), kept where every vendor used has them.

There is one item per (vendor, concept): the vendor's artwork rendered with cairosvg on white.
- Train and valid users have one *seen* vendor and histories over its non-held-out concepts; every
  seen-vendor test user ends on a held-out (vendor, concept) pair that no training user's history
  holds (`common.choose_held_out` / `common.plan_users`).
- **Unseen style**: the `unseen` vendors have no training item at all. Only some test users have
  them: a history of one unseen vendor and a target of that vendor whose concept none of that
  vendor's histories show. They carry `"unseen_style": true` in users.jsonl and are listed in
  dataset.json (`unseen_vendors`, `unseen_style_users`), so an evaluation can report them apart.
- Noisy users as in the other benchmarks (`intruders.py`); intruders are training items.

Each vendor's package version and licence go into dataset.json (`vendors`) and LICENSES.md.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from drc.atomic import atomic_write_text
from drc.data.benchmarks import common, iconify
from drc.data.benchmarks.common import IMAGES_DIR, UserPlan, rng_for
from drc.data.benchmarks.intruders import DEFAULT_SHARE, add_intruders
from drc.data.manifest import USERS_FILE, Item, User, write_dataset
from drc.errors import DrcError

NAME = "emoji"
INSTRUCTION = "an emoji"
DEFAULT_USERS = 384
DEFAULT_SIZE = "128"
LICENSE_FILE = "LICENSES.md"
UNSEEN_PER_VENDOR = 1 / 24  # unseen-style test users per unseen vendor, as a share of --users (16 of 384)
MIN_CONCEPTS = 4
SHEET_CONCEPTS = 24  # columns of the contact sheet

# the six main vendor sets, then older or other styles that look different from all of them
SEEN_VENDORS = ("twemoji", "noto", "openmoji", "fluent-emoji-flat", "emojione", "fxemoji", "noto-v1")
UNSEEN_VENDORS = ("streamline-emojis", "emojione-v1")

# Concept keys (`iconify.normalise`d names), every one present in all nine default vendors. Chosen
# to look different from each other at 64 px: one of each kind (no second moon phase, book or car).
# fmt: off
CONCEPTS: tuple[str, ...] = (
    # animals
    "ant", "bird", "blowfish", "boar", "bug", "cat", "chicken", "chipmunk", "cow", "crocodile",
    "dog", "dolphin", "elephant", "goat", "hatchingchick", "honeybee", "horse", "koala",
    "ladybeetle", "monkey", "mouse", "octopus", "penguin", "pig", "poodle", "ram", "rooster",
    "snail", "snake", "spiralshell", "tiger", "tropicalfish", "turtle",
    # plants
    "blossom", "bouquet", "cactus", "christmastree", "fourleafclover", "herb", "hibiscus",
    "mapleleaf", "mushroom", "palmtree", "rose", "seedling", "sunflower",
    # food and drink
    "birthdaycake", "bread", "candy", "cherries", "cookie", "doughnut", "frenchfries",
    "friedshrimp", "grapes", "hamburger", "honeypot", "hotbeverage", "lemon", "meatonbone",
    "peach", "pear", "poultryleg", "redapple", "riceball", "shavedice", "softicecream",
    "spaghetti", "strawberry", "sushi", "tomato", "tropicaldrink", "watermelon", "wineglass",
    # objects and vehicles
    "airplane", "anchor", "artistpalette", "baseball", "battery", "bicycle", "bowling", "bus",
    "clapperboard", "crystalball", "electricplug", "guitar", "helicopter", "jackolantern",
    "microphone", "microscope", "moneybag", "package", "rocket", "sailboat", "saxophone",
    "telescope", "television", "tent", "tractor", "umbrellawithraindrops", "violin", "wrench",
)
# fmt: on
# Unicode categories (metadata.json) and name parts that never make a concept: faces and people all
# look alike across vendors, flags / keycaps / letters are text, skin tones are variants.
_BAD_CATEGORY = ("people", "smiley", "flag", "symbol", "modifier")
_BAD_NAME = ("skintone", "flag", "keycap", "button", "regionalindicator", "letter")


def eligible(key: str, sets: Sequence[iconify.IconSet]) -> bool:
    """A concept key every set has, not a face, person, flag, keycap, letter or skin-tone variant."""
    if len(key) < 3 or key.isdigit() or any(b in key for b in _BAD_NAME):
        return False
    for s in sets:
        cat = s.categories.get(key, "").lower()
        if key not in s.names or any(b in cat for b in _BAD_CATEGORY):
            return False
    return True


def shared_concepts(sets: Sequence[iconify.IconSet], wanted: Sequence[str]) -> list[str]:
    """The concepts of `wanted` (in its order) that every set draws and `eligible` accepts."""
    return [k for k in dict.fromkeys(iconify.normalise(w) for w in wanted) if eligible(k, sets)]


def concept_words(key: str, sets: Sequence[iconify.IconSet]) -> str:
    """A caption name for a concept: the first hyphenated vendor name ("red apple"), else the key."""
    for s in sets:
        name = s.names[key].removesuffix("-1")
        if "-" in name:
            return name.replace("-", " ")
    return key


def plan_unseen(
    vendors: Sequence[str], concepts: Sequence[str], n_users: int, seed: int, history_len: int, first: int
) -> tuple[list[UserPlan], dict[str, list[str]]]:
    """Test users of vendors with no training item, and {vendor: its target concepts}.

    Users take the vendors in turn. Each vendor keeps an eighth of the concepts (at least one) as its
    targets and draws histories (distinct concepts) from the rest, so no history shows a target pair.
    """
    rng = rng_for(seed, 505)
    targets: dict[str, list[str]] = {}
    rest: dict[str, list[str]] = {}
    for v in vendors:
        order = [concepts[int(i)] for i in rng.permutation(len(concepts))]
        n = max(1, round(len(concepts) / 8))
        targets[v], rest[v] = sorted(order[:n], key=concepts.index), order[n:]
    if vendors and min(len(r) for r in rest.values()) < history_len:
        raise DrcError(f"{len(concepts)} concepts are too few for unseen-style histories of {history_len}")
    plans = []
    for j in range(n_users if vendors else 0):
        v = vendors[j % len(vendors)]
        hist = [rest[v][int(i)] for i in rng.choice(len(rest[v]), history_len, replace=False)]
        target = targets[v][(j // len(vendors)) % len(targets[v])]
        plans.append(UserPlan(f"u{first + j:04d}", v, "test", (*hist, target)))
    return plans, targets


def load_sets(vendors: Sequence[str], cache: Path) -> list[iconify.IconSet]:
    """Each vendor's icon set, fetched into `cache` once."""
    sets = [iconify.load_set(p) for p in iconify.fetch(vendors, cache)]
    for v, s in zip(vendors, sets):
        if s.prefix != v:
            raise DrcError(f"{cache / s.tarball}: holds icon set {s.prefix!r}, expected {v!r}")
    return sets


def license_text(sets: Sequence[iconify.IconSet]) -> str:
    """LICENSES.md: each vendor's artwork, author, licence and package version."""
    lines = [
        "# Artwork licences",
        "",
        "Every image in images/ is a vendor's emoji artwork, rendered (scaled, on white, not otherwise",
        "changed) from the icon data of the npm package named below, published by Iconify",
        "(https://iconify.design). The artwork belongs to its authors and is used under its licence; a",
        "derived work must credit them the same way (CC BY-SA sets: and share it under the same licence).",
        "",
        "| style (vendor) | artwork | author | licence | npm package |",
        "|---|---|---|---|---|",
    ]
    for s in sets:
        art = f"{s.title} {s.set_version}".strip()
        lic = f"[{s.license_title}]({s.license_url})" if s.license_url else s.license_title
        lines.append(
            f"| {s.prefix} | {art} | [{s.author}]({s.author_url}) | {lic} ({s.license_spdx}) "
            f"| {s.package}@{s.version} |"
        )
    return "\n".join(lines) + "\n"


def _write_users(out: Path, users: Sequence[User], unseen: set[str]) -> None:
    """users.jsonl again with `"unseen_style": true` on the unseen-style test users."""
    rows = []
    for u in users:
        d: dict[str, Any] = {"id": u.id, "history": list(u.history), "split": u.split}
        if u.id in unseen:
            d["unseen_style"] = True
        rows.append(json.dumps(d, ensure_ascii=False) + "\n")
    atomic_write_text(out / USERS_FILE, "".join(rows))


def _check_args(vendors: Sequence[str], unseen: Sequence[str], n_users: int) -> None:
    if len(set(vendors)) != len(vendors) or not vendors:
        raise DrcError(f"--vendors {','.join(vendors)!r}: give distinct vendor names")
    both = sorted(set(vendors) & set(unseen))
    if both or len(set(unseen)) != len(unseen):
        raise DrcError(f"--unseen {','.join(unseen)!r}: a vendor is either seen or unseen, once ({both})")
    if len(vendors) < 2:
        raise DrcError(
            "the emoji benchmark needs at least 2 seen vendors (a test reference is another style)"
        )
    if n_users < 3 + len(unseen):
        raise DrcError(
            f"--users {n_users} is too few for train, valid, test and {len(unseen)} unseen vendors"
        )


def _info(
    vendors: list[str],
    unseen: list[str],
    keys: list[str],
    words: dict[str, str],
    held_out: list[tuple[str, str]],
    unseen_targets: dict[str, list[str]],
    unseen_ids: list[str],
    sets: Sequence[iconify.IconSet],
    seed: int,
    hw: tuple[int, int],
    history_len: int,
) -> dict[str, Any]:
    """dataset.json of a build (without the noisy-user counts, known only after placing intruders)."""
    return {
        "name": NAME,
        "instruction": INSTRUCTION,
        "themes": vendors,
        "unseen_vendors": unseen,
        "semantics": keys,
        "concept_names": words,
        "held_out": [list(p) for p in held_out],
        "unseen_targets": unseen_targets,
        "unseen_style_users": unseen_ids,
        "builder": common.BUILDER,
        "seed": seed,
        "size": list(hw),
        "history_len": history_len,
        "splits": {
            "train": "seen vendors, seen vendor x concept pairs only",
            "valid": "seen pairs only (new users)",
            "test": f"{history_len} seen items, then a held-out pair; unseen_style users: "
            "a vendor with no training item",
        },
        "style": "vendor: the design team's drawing (line, shading, proportions, palette)",
        "semantic": "concept: the emoji's shared name",
        "vendors": {s.prefix: s.credit() for s in sets},
        "attribution": "; ".join(f"{s.title}: {s.author}, {s.license_title}" for s in sets),
    }


def _render_items(
    out: Path,
    sets: Sequence[iconify.IconSet],
    keys: Sequence[str],
    words: dict[str, str],
    size: int,
    shown: Sequence[str],
) -> tuple[list[Item], dict[tuple[str, str], Any]]:
    """Render every (vendor, concept) into out/images; the items, and the images of the `shown` concepts
    (the contact sheet's cells)."""
    items: list[Item] = []
    cells = {}
    (out / IMAGES_DIR).mkdir()
    for s in sets:
        for k in keys:
            iid = f"{s.prefix}-{k}"
            img = iconify.render_icon(s, k, size)
            img.save(out / IMAGES_DIR / f"{iid}.png", format="PNG")
            if k in shown:
                cells[(s.prefix, k)] = img
            caption = f"{common.with_article(words[k])} emoji, {s.title}"
            items.append(Item(iid, f"{IMAGES_DIR}/{iid}.png", caption, style=s.prefix, semantics=k))
    return items, cells


def build(
    out: Path,
    users: int = DEFAULT_USERS,
    seed: int = 0,
    size: tuple[int, int] | int = 128,
    cache: Path | None = None,
    vendors: Sequence[str] = SEEN_VENDORS,
    unseen: Sequence[str] = UNSEEN_VENDORS,
    concepts: Sequence[str] = CONCEPTS,
    noisy_share: float = DEFAULT_SHARE,
    history_len: int = 5,
) -> dict[str, Any]:
    """Build the emoji benchmark into `out`; returns counts and seconds.

    vendors: the seen styles (`@iconify-json/<name>` packages); unseen: styles with no training item.
    concepts: wanted concept keys, kept where every vendor (seen and unseen) has them.
    """
    t0 = time.perf_counter()
    out, vendors, unseen = Path(out), list(vendors), list(unseen)
    hw = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    if hw[0] != hw[1]:
        raise DrcError(f"emoji are square: --size {hw[0]}x{hw[1]} has height != width")
    _check_args(vendors, unseen, users)
    if not 0.0 <= noisy_share <= 1.0:
        raise DrcError(f"--noisy-share {noisy_share} must be between 0 and 1")
    cache = Path(cache) if cache is not None else iconify.default_cache()
    sets = load_sets(vendors + unseen, cache)
    keys = shared_concepts(sets, concepts)
    if len(keys) < MIN_CONCEPTS:
        raise DrcError(f"only {len(keys)} concepts are drawn by every vendor; need at least {MIN_CONCEPTS}")
    t_fetch = time.perf_counter() - t0

    held_out = common.choose_held_out(vendors, keys, seed)
    n_unseen = max(1, round(users * UNSEEN_PER_VENDOR)) * len(unseen) if unseen else 0
    plans = common.plan_users(vendors, keys, held_out, users - n_unseen, seed, history_len=history_len)
    extra, unseen_targets = plan_unseen(unseen, keys, n_unseen, seed, history_len, len(plans))
    plans += extra
    common.prepare_out(out, NAME, extra_files=(LICENSE_FILE,))  # after planning: bad input never touches it

    words = {k: concept_words(k, sets) for k in keys}
    items, cells = _render_items(out, sets, keys, words, hw[0], shown=keys[:SHEET_CONCEPTS])
    users_ = [User(p.id, tuple(f"{p.theme}-{k}" for k in p.semantics), p.split) for p in plans]
    users_, noisy = add_intruders(users_, items, history_len, noisy_share, rng_for(seed, 404))
    unseen_ids = [p.id for p in extra]
    meta = _info(
        vendors, unseen, keys, words, held_out, unseen_targets, unseen_ids, sets, seed, hw, history_len
    )
    meta["noisy_users"] = {
        "share": noisy_share,
        "count": len(noisy),
        "intruders": sum(map(len, noisy.values())),
    }
    write_dataset(out, items, users_, meta)
    _write_users(out, users_, set(unseen_ids))
    atomic_write_text(out / LICENSE_FILE, license_text(sets))
    common.contact_sheet(
        cells, vendors + unseen, keys[:SHEET_CONCEPTS], set(held_out), out / common.CONTACT_SHEET
    )
    tests = [p for p in plans if p.split == "test" and p.theme in vendors]
    return {
        "name": NAME,
        "out": str(out),
        "themes": len(vendors),
        "unseen_vendors": len(unseen),
        "semantics": len(keys),
        "held_out_pairs": len(held_out),
        "items": len(items),
        "users": len(users_),
        "users_per_split": {s: sum(u.split == s for u in users_) for s in common.SPLIT_ORDER},
        "unseen_style_users": len(unseen_ids),
        "held_out_untested": len(set(held_out) - {(p.theme, p.semantics[-1]) for p in tests}),
        "themes_untrained": len(set(vendors) - {p.theme for p in plans if p.split == "train"}),
        "samples": sum(max(0, len(u.history) - history_len) for u in users_),
        "noisy_users": len(noisy),
        "noisy_test_users": sum(u.split == "test" and u.id in noisy for u in users_),
        "history_len": history_len,
        "seconds": round(time.perf_counter() - t0, 2),
        "seconds_fetch": round(t_fetch, 2),
    }


def _names(text: str) -> list[str]:
    return [v.strip() for v in text.split(",") if v.strip()]


def cli(argv: list[str]) -> int:
    """`drc data emoji --out DIR`: build and print counts."""
    p = argparse.ArgumentParser(prog="drc data emoji", description="Build the vendor-emoji benchmark.")
    p.add_argument("--out", required=True, type=Path, help="a new or empty folder (or a previous build)")
    p.add_argument("--users", type=int, default=DEFAULT_USERS, help=f"users (default {DEFAULT_USERS})")
    p.add_argument("--seed", type=int, default=0, help="random seed; the same seed gives the same bytes")
    p.add_argument("--size", default=DEFAULT_SIZE, help=f"image size N or HxW (default {DEFAULT_SIZE})")
    p.add_argument(
        "--cache", type=Path, default=None, help=f"npm tarballs (default {iconify.default_cache()})"
    )
    p.add_argument("--vendors", default=",".join(SEEN_VENDORS), help="seen styles, comma-separated")
    p.add_argument(
        "--unseen", default=",".join(UNSEEN_VENDORS), help="styles with no training item ('' none)"
    )
    p.add_argument(
        "--concepts", type=int, default=None, help=f"use the first N concepts (of {len(CONCEPTS)})"
    )
    p.add_argument("--noisy-share", type=float, default=DEFAULT_SHARE, help="share of users with intruders")
    args = p.parse_args(argv)
    if args.concepts is not None and args.concepts < MIN_CONCEPTS:
        raise DrcError(f"--concepts {args.concepts} is too few: give at least {MIN_CONCEPTS}")
    stats = build(
        args.out,
        users=args.users,
        seed=args.seed,
        size=common.parse_size(args.size),
        cache=args.cache,
        vendors=_names(args.vendors),
        unseen=_names(args.unseen),
        concepts=CONCEPTS[: args.concepts] if args.concepts else CONCEPTS,
        noisy_share=args.noisy_share,
    )
    per = stats["users_per_split"]
    print(
        f"emoji: {stats['items']} items, {stats['users']} users (train {per['train']}, valid {per['valid']}, "
        f"test {per['test']}, of which {stats['unseen_style_users']} unseen-style), "
        f"{stats['samples']} samples (k={stats['history_len']}), "
        f"{stats['themes']} seen + {stats['unseen_vendors']} unseen vendors x "
        f"{stats['semantics']} concepts, {stats['held_out_pairs']} held-out pairs, "
        f"{stats['noisy_users']} noisy users ({stats['noisy_test_users']} in test)"
    )
    if stats["held_out_untested"] or stats["themes_untrained"]:
        print(
            f"note: with {stats['users']} users, {stats['held_out_untested']} held-out pairs have no test "
            f"user and {stats['themes_untrained']} vendors no train user (a smoke test, not for results)"
        )
    sheet = Path(stats["out"]) / common.CONTACT_SHEET
    print(
        f"wrote {stats['out']} in {stats['seconds']:.1f} s (contact sheet: {sheet}; licences: {LICENSE_FILE})"
    )
    return 0
