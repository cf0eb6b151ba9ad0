"""Shared pieces of the built-in benchmarks (stickers, posters).

A benchmark is a grid of style themes x semantics labels. This module does everything that does
not depend on what an image looks like:
- `choose_held_out`: the theme x semantics pairs that never occur in training;
- `plan_users`: users, their split, their theme and the semantics of each item in their history;
- `build_benchmark`: renders every planned item through a benchmark's `render` function, writes the
  dataset (docs/DESIGN.md section 3) and a contact sheet, refusing to overwrite foreign folders;
- `benchmark_cli`: the `drc data <name> --out DIR` command line;
- drawing helpers both benchmarks use (patterns, frame masks, halos, posed pasting).

Images are drawn at `SUPERSAMPLE` times the output size and reduced at the end: thin lines and
rotated art stay smooth at 64 px instead of aliasing into noise that a tokenizer would have to learn.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from drc.data.benchmarks.drawing import (  # noqa: F401 - re-exported: common.<helper> in the benchmarks
    Colour,
    contact_sheet,
    finish,
    grow,
    hex_rgb,
    paste_center,
    pattern,
    posed,
    shadow,
    shape_mask,
    shrink,
    with_halo,
)
from drc.data.benchmarks.intruders import DEFAULT_SHARE
from drc.data.manifest import INFO_FILE, ITEMS_FILE, USERS_FILE, Item, User, write_dataset
from drc.errors import DrcError

BUILDER = "drc.data.benchmarks"  # marks dataset.json of a built-in benchmark: such a folder may be rebuilt
CONTACT_SHEET = "contact_sheet.png"
IMAGES_DIR = "images"
SUPERSAMPLE = 2
SPLIT_ORDER = ("train", "valid", "test")
_TMP_STEMS = [f.split(".") for f in (ITEMS_FILE, USERS_FILE, INFO_FILE)]

# A render function draws one image: (theme, semantics, rng or None for the canonical look, size
# (H, W)) -> (RGB image of that size, caption). rng is the item's own random source for jitter.
RenderFn = Callable[[str, str, "np.random.Generator | None", tuple[int, int]], tuple[Image.Image, str]]


# ---------------------------------------------------------------------------------------------
# planning: held-out pairs, users, splits


@dataclass(frozen=True)
class UserPlan:
    """One user before rendering: their theme and the semantics label of each history item."""

    id: str
    theme: str
    split: str
    semantics: tuple[str, ...]


def rng_for(seed: int, *keys: int) -> np.random.Generator:
    """An independent generator for (seed, keys): an item's look does not depend on build order."""
    return np.random.default_rng(np.random.SeedSequence([seed, *keys]))


def choose_held_out(themes: Sequence[str], semantics: Sequence[str], seed: int) -> list[tuple[str, str]]:
    """Theme x semantics pairs kept out of training: about 12.5% of each theme's pairs, at least one
    (with 12 labels: 1 or 2 per theme, alternating).

    Each pick takes a least-held-out semantics label, so every label stays seen in most themes and
    every label is held out somewhere when there are enough themes (composition is tested on all).
    """
    rng = rng_for(seed, 101)
    count = {s: 0 for s in semantics}
    pairs: list[tuple[str, str]] = []
    share = len(semantics) / 8
    low_n, high_n = max(1, math.floor(share)), max(1, math.ceil(share))
    order = rng.permutation(len(themes))
    for rank, t in enumerate(order):
        n = high_n if rank % 2 == 1 else low_n
        chosen: list[str] = []
        for _ in range(n):
            free = [s for s in semantics if s not in chosen]
            low = min(count[s] for s in free)
            cands = [s for s in free if count[s] == low]
            pick = cands[int(rng.integers(len(cands)))]
            chosen.append(pick)
            count[pick] += 1
        pairs += [(themes[int(t)], s) for s in chosen]
    # a fixed order (theme order, then semantics order) keeps dataset.json stable and readable
    return sorted(pairs, key=lambda p: (themes.index(p[0]), semantics.index(p[1])))


def _deck_draw(deck: list[str], refill: Callable[[], list[str]], avoid: str | None) -> str:
    """Next label from a shuffled deck (refilled when empty), not equal to `avoid` if possible."""
    if not deck:
        deck.extend(refill())
    for i in range(len(deck) - 1, -1, -1):
        if deck[i] != avoid:
            return deck.pop(i)
    deck.extend(refill())  # only `avoid` left in the deck: take another shuffle's card
    return _deck_draw(deck, refill, avoid)


def split_counts(n_users: int, n_themes: int, n_held_out: int) -> dict[str, int]:
    """Users per split: valid ~10%, test ~25%, the rest train.

    Test grows to one user per held-out pair where that still leaves a train user per theme, so at
    the default sizes every held-out pair is tested and every theme is trained. Tiny builds (a smoke
    test with 24 users) test only some held-out pairs; `build_benchmark` reports how many.
    """
    if n_users < 3:
        raise DrcError(f"--users {n_users} is too few: a benchmark needs at least 3 (train, valid, test)")
    n_valid = max(1, round(0.1 * n_users))
    n_test = max(1, round(0.25 * n_users), min(n_held_out, n_users - n_valid - n_themes))
    n_test = min(n_test, n_users - n_valid - 1)
    return {"train": n_users - n_test - n_valid, "valid": n_valid, "test": n_test}


def plan_users(
    themes: Sequence[str],
    semantics: Sequence[str],
    held_out: Sequence[tuple[str, str]],
    n_users: int,
    seed: int,
    history_len: int = 5,
    length: tuple[int, int] = (8, 12),
) -> list[UserPlan]:
    """Users of all splits, each keeping one theme for their whole history.

    - train and valid users see only non-held-out pairs; their history length is drawn from `length`
      (inclusive), so sliding windows of `history_len` + target give several samples each. Within a
      theme the semantics come from one shuffled deck, so the theme's users together cover every
      seen pair before any repeats.
    - test users have exactly `history_len` seen items (distinct semantics) and then one target whose
      pair is held out: their single window measures composition, and a held-out pair never appears
      in a history (it would hand the model the answer's look). Test users cycle over the held-out
      pairs (shuffled), so each pair is a target at least once when there are enough test users.
    """
    if length[0] < history_len + 1:
        raise DrcError(f"user histories of {length[0]} items are too short for k={history_len} + a target")
    rng = rng_for(seed, 202)
    counts = split_counts(n_users, len(themes), len(held_out))
    hidden = set(held_out)
    seen = {t: [s for s in semantics if (t, s) not in hidden] for t in themes}
    decks: dict[str, list[str]] = {t: [] for t in themes}

    def refill(t: str) -> Callable[[], list[str]]:
        return lambda: [seen[t][int(i)] for i in rng.permutation(len(seen[t]))]

    plans: list[UserPlan] = []
    for split in ("train", "valid"):
        order = [themes[int(i)] for i in rng.permutation(len(themes))]
        for j in range(counts[split]):
            theme = order[j % len(themes)]
            n = int(rng.integers(length[0], length[1] + 1))
            labels: list[str] = []
            for _ in range(n):
                labels.append(_deck_draw(decks[theme], refill(theme), labels[-1] if labels else None))
            plans.append(UserPlan(f"u{len(plans):04d}", theme, split, tuple(labels)))
    pairs = [held_out[int(i)] for i in rng.permutation(len(held_out))]
    for j in range(counts["test"]):
        theme, target = pairs[j % len(pairs)]
        take = min(history_len, len(seen[theme]))  # distinct where the theme has enough seen labels
        picks = list(rng.choice(len(seen[theme]), take, replace=False))
        picks += list(rng.choice(len(seen[theme]), history_len - take))
        hist = [seen[theme][int(i)] for i in picks]
        plans.append(UserPlan(f"u{len(plans):04d}", theme, "test", (*hist, target)))
    return plans


# ---------------------------------------------------------------------------------------------
# the output folder


def prepare_out(out: Path, name: str, extra_files: Sequence[str] = ()) -> None:
    """Make `out` ready for a build of benchmark `name`.

    An empty or missing folder is used as is. A folder holding a previous built-in benchmark (its
    dataset.json says so, and it holds nothing a build does not write) is emptied of the build's
    files. Anything else is refused: a build never overwrites the user's data. `extra_files`: other
    top-level files this benchmark writes (e.g. a licence file), removed with the rest.
    """
    if out.exists() and not out.is_dir():
        raise DrcError(f"--out {str(out)!r} is a file; give a folder (new or empty) for the {name} benchmark")
    if not out.exists() or not any(out.iterdir()):
        out.mkdir(parents=True, exist_ok=True)
        return
    ours = {ITEMS_FILE, USERS_FILE, INFO_FILE, CONTACT_SHEET, IMAGES_DIR, *extra_files}
    info: Any = None
    with contextlib.suppress(OSError, ValueError):  # unreadable or no dataset.json: not a build
        info = json.loads((out / INFO_FILE).read_text(encoding="utf-8"))
    # manifest.write_dataset's temporary files (".items.jsonl.*.tmp") may remain after an interrupted build
    leftovers = [p for p in out.iterdir() if p.name.endswith(".tmp") and p.name.split(".")[1:3] in _TMP_STEMS]
    foreign = sorted(p.name for p in out.iterdir() if p.name not in ours and p not in leftovers)
    images = out / IMAGES_DIR
    if images.is_dir():
        stray = (p for p in images.iterdir() if p.suffix != ".png" or p.is_dir())
        foreign += sorted(f"{IMAGES_DIR}/{p.name}" for p in stray)
    elif images.exists():
        foreign.append(IMAGES_DIR)
    if not isinstance(info, dict) or info.get("builder") != BUILDER or foreign:
        why = f"it holds {', '.join(foreign[:3])}" if foreign else "it is not a built-in benchmark folder"
        raise DrcError(
            f"refusing to write the {name} benchmark into non-empty folder {str(out)!r}: {why}; "
            "give a new or empty folder"
        )
    for f in (ITEMS_FILE, USERS_FILE, INFO_FILE, CONTACT_SHEET, *extra_files):
        (out / f).unlink(missing_ok=True)
    for p in leftovers:
        p.unlink()
    if images.is_dir():
        shutil.rmtree(images)


# ---------------------------------------------------------------------------------------------
# building


def build_benchmark(
    out: Path,
    *,
    name: str,
    instruction: str,
    themes: Sequence[str],
    semantics: Sequence[str],
    render: RenderFn,
    n_users: int,
    seed: int,
    size: tuple[int, int],
    info: dict[str, Any] | None = None,
    history_len: int = 5,
    noisy_share: float = 0.0,
) -> dict[str, Any]:
    """Plan, render and write a benchmark into `out`; returns counts and timings.

    `noisy_share` of the users (every split) get 1-2 intruders of another theme (`intruders.py`).
    """
    from drc.data.benchmarks.intruders import add_intruders

    t0 = time.perf_counter()
    out = Path(out)
    if not 0.0 <= noisy_share <= 1.0:
        raise DrcError(f"--noisy-share {noisy_share} must be between 0 and 1")
    held_out = choose_held_out(themes, semantics, seed)
    plans = plan_users(themes, semantics, held_out, n_users, seed, history_len=history_len)
    prepare_out(out, name)  # after planning: bad arguments never touch the folder
    meta = {
        "name": name,
        "instruction": instruction,
        "themes": list(themes),
        "semantics": list(semantics),
        "held_out": [list(p) for p in held_out],
        "builder": BUILDER,
        "seed": seed,
        "size": list(size),
        "history_len": history_len,
        "splits": {
            "train": "seen theme x semantics pairs only",
            "valid": "seen pairs only (new users)",
            "test": f"{history_len} seen items, then a target whose pair is held out",
        },
        **(info or {}),
    }
    # dataset.json first: it marks the folder as a build, so an interrupted build can be redone
    (out / INFO_FILE).write_text(json.dumps(meta, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    (out / IMAGES_DIR).mkdir()
    items: list[Item] = []
    users: list[User] = []
    for ui, plan in enumerate(plans):
        ids = []
        for j, sem in enumerate(plan.semantics):
            iid = f"{plan.id}-{j:02d}"
            img, text = render(plan.theme, sem, rng_for(seed, 303, ui, j), size)
            rel = f"{IMAGES_DIR}/{iid}.png"
            img.save(out / rel, format="PNG")
            items.append(Item(iid, rel, text, style=plan.theme, semantics=sem))
            ids.append(iid)
        users.append(User(plan.id, tuple(ids), plan.split))
    # after rendering, from a stream of its own: the clean part is the same with or without noise
    users, noisy = add_intruders(users, items, history_len, noisy_share, rng_for(seed, 404))
    n_intruders = sum(map(len, noisy.values()))
    meta["noisy_users"] = {"share": noisy_share, "count": len(noisy), "intruders": n_intruders}
    write_dataset(out, items, users, meta)
    t_items = time.perf_counter() - t0
    cells = {(t, s): render(t, s, None, size)[0] for t in themes for s in semantics}
    tests = [p for p in plans if p.split == "test"]
    contact_sheet(cells, themes, semantics, set(held_out), out / CONTACT_SHEET)
    return {
        "name": name,
        "out": str(out),
        "themes": len(themes),
        "semantics": len(semantics),
        "held_out_pairs": len(held_out),
        "items": len(items),
        "users": len(users),
        "users_per_split": {s: sum(p.split == s for p in plans) for s in SPLIT_ORDER},
        "held_out_untested": len(set(held_out) - {(p.theme, p.semantics[-1]) for p in tests}),
        "themes_untrained": len(set(themes) - {p.theme for p in plans if p.split == "train"}),
        "samples": sum(max(0, len(u.history) - history_len) for u in users),
        "noisy_users": len(noisy),
        "noisy_test_users": sum(u.split == "test" and u.id in noisy for u in users),
        "history_len": history_len,
        "seconds": round(time.perf_counter() - t0, 2),
        "seconds_items": round(t_items, 2),
    }


# ---------------------------------------------------------------------------------------------
# command line


def parse_size(text: str) -> tuple[int, int]:
    """'64' -> (64, 64); '96x64' -> (96, 64) as (height, width)."""
    try:
        parts = [int(p) for p in text.lower().split("x")]
    except ValueError:
        parts = []
    if len(parts) == 1:
        parts *= 2
    if len(parts) != 2 or min(parts) < 16 or max(parts) > 1024:
        raise DrcError(f"--size {text!r} is not a size: give N or HxW with 16..1024 pixels, e.g. 64 or 96x64")
    return parts[0], parts[1]


def benchmark_cli(
    argv: list[str],
    name: str,
    build: Callable[..., dict[str, Any]],
    default_users: int,
    default_size: str,
    semantics: Sequence[str] = (),
) -> int:
    """`drc data <name> --out DIR [--users N] [--seed S] [--size S] [--semantics KIND]`: build, print counts.

    `semantics`: the kinds of semantics labels the benchmark offers (the first is the default);
    empty for a benchmark with one kind. `--users` left out lets `build` choose for the kind.
    """
    p = argparse.ArgumentParser(prog=f"drc data {name}", description=f"Build the {name} benchmark.")
    p.add_argument("--out", required=True, type=Path, help="a new or empty folder (or a previous build)")
    p.add_argument("--users", type=int, default=None, help=f"users (default {default_users})")
    p.add_argument("--seed", type=int, default=0, help="random seed; the same seed gives the same bytes")
    p.add_argument("--size", default=default_size, help=f"image size N or HxW (default {default_size})")
    if semantics:
        p.add_argument("--semantics", choices=list(semantics), default=semantics[0], help="semantics labels")
    p.add_argument(
        "--noisy-share",
        type=float,
        default=DEFAULT_SHARE,
        help=f"share of users with 1-2 items of another theme in their history (default {DEFAULT_SHARE})",
    )
    args = p.parse_args(argv)
    kwargs: dict[str, Any] = {"seed": args.seed, "size": parse_size(args.size)}
    kwargs["noisy_share"] = args.noisy_share
    if args.users is not None:
        kwargs["users"] = args.users
    if semantics:
        kwargs["semantics"] = args.semantics
    stats = build(args.out, **kwargs)
    per = stats["users_per_split"]
    print(
        f"{stats['name']}: {stats['items']} items, {stats['users']} users "
        f"(train {per['train']}, valid {per['valid']}, test {per['test']}), "
        f"{stats['samples']} samples (k={stats['history_len']}), {stats['themes']} themes x "
        f"{stats['semantics']} semantics, {stats['held_out_pairs']} held-out pairs, "
        f"{stats['noisy_users']} noisy users ({stats['noisy_test_users']} in test)"
    )
    if stats["held_out_untested"] or stats["themes_untrained"]:
        print(
            f"note: with {stats['users']} users, {stats['held_out_untested']} held-out pairs have no test "
            f"user and {stats['themes_untrained']} themes no train user (a smoke test, not for results)"
        )
    sheet = Path(stats["out"]) / CONTACT_SHEET
    print(f"wrote {stats['out']} in {stats['seconds']:.1f} s (contact sheet: {sheet})")
    return 0


def with_article(noun: str) -> str:
    """'apple' -> 'an apple', 'cat' -> 'a cat', 'unicorn' -> 'a unicorn' (captions)."""
    vowel = noun[:1].lower() in "aeiou" and not noun.lower().startswith(("uni", "use", "eu", "one"))
    return f"{'an' if vowel else 'a'} {noun}"
