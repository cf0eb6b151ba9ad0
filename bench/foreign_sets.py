"""Foreign benchmark sets: labelled datasets of the built-in kind (style x semantics, held-out pairs)
made from other artwork, in other layouts, for checking that `drc train --data DIR` composes on data
that is not the built-in sticker benchmark (issue 22).

    PYTHONPATH=src python bench/foreign_sets.py --kind glyphs --users 240 --out /work/data/foreign_glyphs_240
    PYTHONPATH=src python bench/foreign_sets.py --kind badges --users 240 --out DIR --check
    PYTHONPATH=src python bench/foreign_sets.py --kind cards --users 240 --out DIR --check

Kinds (the artwork and layout are in bench/foreign_glyphs.py, foreign_badges.py and foreign_cards.py):
- glyphs: a DejaVu Sans symbol (semantics), large and centred, on a full-bleed textured tile whose
  texture, colours, ink and outline/shadow are the theme (style). 10 themes x 10 symbols.
- badges: an OpenMoji concept as single-colour line art (semantics) inside a badge whose shape,
  border, colours, texture, ribbon and icon place are the theme (style). 10 themes x 10 concepts.
- cards: a Twemoji drawing (semantics), large and centred, recoloured in the theme's two inks, on a
  card whose shape, fill, border, background texture and outline are the theme (style). Fetches
  `@iconify-json/twemoji` once with npm. 10 themes x 10 concepts.

The plan is the built-in one, reused from drc.data.benchmarks: `choose_held_out` (about 12% of the
pairs, every semantics label held out somewhere), `plan_users` (valid ~10%, test ~25%, histories of
8-12 items, test users 5 seen items then one held-out target) and `add_intruders` (--noisy-share of
every split gets 1-2 items of another theme). What differs from a built-in build, as a user's own
folder would: item ids do not name their user, users.jsonl is not in split order, and dataset.json
has no built-in `builder` mark.

Files: items.jsonl, users.jsonl, dataset.json, images/*.png, contact_sheet.png (theme x semantics,
held-out cells marked red) and sample40.png (40 random items at 2x, labelled). --check loads the set
with drc's reader, builds its samples as `drc train` does and asserts the held-out test design.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

from drc.data.benchmarks import common
from drc.data.benchmarks.intruders import DEFAULT_SHARE, add_intruders
from drc.data.manifest import INFO_FILE, ITEMS_FILE, USERS_FILE, Item, User, write_dataset

MADE_BY = "bench/foreign_sets.py"
SAMPLE_SHEET = "sample40.png"
HISTORY_LEN = 5
DEFAULT_SEED = {"glyphs": 0, "badges": 1, "cards": 2}


def kind_module(kind: str):  # type: ignore[no-untyped-def]
    if kind == "glyphs":
        import foreign_glyphs

        foreign_glyphs.check_font()
        return foreign_glyphs
    if kind == "cards":
        import foreign_cards

        foreign_cards.check_art()
        return foreign_cards
    import foreign_badges

    return foreign_badges


def prepare_out(out: Path, made_by: str = "", files: tuple[str, ...] = ()) -> None:
    """An empty/new folder, or one the builder `made_by` (default: this script) built before, emptied
    of its `files` (default: this script's) and images; anything else is refused."""
    made_by = made_by or MADE_BY
    files = files or (ITEMS_FILE, USERS_FILE, INFO_FILE, common.CONTACT_SHEET, SAMPLE_SHEET)
    if out.exists() and not out.is_dir():
        raise SystemExit(f"--out {out}: is a file")
    if not out.exists() or not any(out.iterdir()):
        out.mkdir(parents=True, exist_ok=True)
        return
    try:
        info = json.loads((out / INFO_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        info = None
    if not isinstance(info, dict) or info.get("made_by") != made_by:
        raise SystemExit(f"--out {out}: not empty and not built by {made_by}; give a new or empty folder")
    for f in files:
        (out / f).unlink(missing_ok=True)
    shutil.rmtree(out / "images", ignore_errors=True)


def build(kind: str, out: Path, n_users: int, seed: int, size: int, noisy_share: float) -> dict[str, Any]:
    """Plan, render and write one foreign set; returns its counts."""
    t0 = time.perf_counter()
    mod = kind_module(kind)
    themes = [t.name for t in mod.THEMES]
    sems = [name for name, _ in mod.SYMBOLS]
    held = common.choose_held_out(themes, sems, seed)
    plans = common.plan_users(themes, sems, held, n_users, seed, history_len=HISTORY_LEN)
    prepare_out(out)
    (out / "images").mkdir()
    hw = (size, size)
    items: list[Item] = []
    users: list[User] = []
    for ui, plan in enumerate(plans):
        ids = []
        for j, sem in enumerate(plan.semantics):
            iid = f"img{len(items):05d}"
            img, text = mod.render(plan.theme, sem, common.rng_for(seed, 707, ui, j), hw)
            img.save(out / "images" / f"{iid}.png", format="PNG")
            items.append(Item(iid, f"images/{iid}.png", text, style=plan.theme, semantics=sem))
            ids.append(iid)
        users.append(User(f"user{ui:04d}", tuple(ids), plan.split))
    users, noisy = add_intruders(users, items, HISTORY_LEN, noisy_share, common.rng_for(seed, 808))
    n_intruders = sum(map(len, noisy.values()))
    # a user's own users.jsonl is in no particular order; the built-in one lists train, valid, test
    order = common.rng_for(seed, 909).permutation(len(users))
    users = [users[int(i)] for i in order]
    info = {
        "name": mod.NAME,
        "instruction": mod.INSTRUCTION,
        "made_by": MADE_BY,
        "kind": kind,
        "themes": themes,
        "semantics": sems,
        "held_out": [list(p) for p in held],
        "seed": seed,
        "size": [size, size],
        "history_len": HISTORY_LEN,
        "noisy_users": {"share": noisy_share, "count": len(noisy), "intruders": n_intruders},
        "description": (mod.__doc__ or "").strip(),
        **({"attribution": mod.ATTRIBUTION} if hasattr(mod, "ATTRIBUTION") else {}),
    }
    write_dataset(out, items, users, info)
    t_items = time.perf_counter() - t0
    cells = {(t, s): mod.render(t, s, None, hw)[0] for t in themes for s in sems}
    common.contact_sheet(cells, themes, sems, set(held), out / common.CONTACT_SHEET)
    sample_sheet(out, items, seed)
    split_of = {u.id: u.split for u in users}
    return {
        "kind": kind,
        "out": str(out),
        "items": len(items),
        "users": len(users),
        "users_per_split": dict(Counter(split_of.values())),
        "themes": len(themes),
        "semantics": len(sems),
        "held_out_pairs": len(held),
        "pairs": len(themes) * len(sems),
        "samples": sum(max(0, len(u.history) - HISTORY_LEN) for u in users),
        "noisy_users": len(noisy),
        "seconds_items": round(t_items, 1),
        "seconds": round(time.perf_counter() - t0, 1),
    }


def sample_sheet(out: Path, items: list[Item], seed: int, n: int = 40, cols: int = 8) -> None:
    """`n` random items at 2x (nearest: the 64 px pixels as they are), labelled style / semantics."""
    pick = sorted(common.rng_for(seed, 1001).choice(len(items), min(n, len(items)), replace=False))
    cell, label = 128, 22
    rows = (len(pick) + cols - 1) // cols
    sheet = Image.new("RGB", (cols * (cell + 4), rows * (cell + label + 4)), "white")
    d = ImageDraw.Draw(sheet)
    for k, i in enumerate(pick):
        it = items[int(i)]
        img = Image.open(out / it.image).convert("RGB").resize((cell, cell), Image.Resampling.NEAREST)
        x, y = (k % cols) * (cell + 4), (k // cols) * (cell + label + 4)
        sheet.paste(img, (x, y))
        d.text((x + 1, y + cell + 1), str(it.style)[:21], fill="black")
        d.text((x + 1, y + cell + 11), str(it.semantics)[:21], fill=(0, 0, 160))
    sheet.save(out / SAMPLE_SHEET, format="PNG")


def _need(ok: bool, problem: str) -> None:
    if not ok:
        raise SystemExit(f"check failed: {problem}")


def check(out: Path) -> dict[str, Any]:
    """Load `out` with drc's reader, make samples as `drc train` does, and assert the test design:
    test samples exist, each target is a held-out pair, no train/valid item shows a held-out pair,
    every test sample gets a real reference (same semantics, another style), every pair is tested."""
    from drc.config import RunConfig
    from drc.data.prepare import prepare

    cfg = RunConfig()
    prep = prepare(out, cfg)
    ds = prep.ds
    held = {tuple(p) for p in ds.info["held_out"]}
    pair = {i: (it.style, it.semantics) for i, it in ds.items.items()}
    split_of = {u.id: u.split for u in ds.users}
    _need(ds.labelled, "every item needs a style and a semantics label")
    for u in ds.users:
        if u.split in ("train", "valid"):
            bad = [i for i in u.history if pair[i] in held]
            _need(not bad, f"{u.id} ({u.split}) holds held-out items {bad[:3]}")
    _need(not any(pair[i] in held for i in prep.train_ids), "a training image shows a held-out pair")
    by_split = Counter(s.split for s in prep.samples)
    tests = prep.split("test")
    _need(bool(tests), "no test samples")
    _need(bool(prep.split("valid")), "no valid samples")
    for s in tests:
        _need(pair[s.target] in held, f"test target {s.target} {pair[s.target]} is not held out")
        _need(s.reference is not None, f"test sample of {s.user} has no reference")
        r = ds.items[s.reference]
        same = r.semantics == ds.items[s.target].semantics and r.style != ds.items[s.target].style
        _need(same, f"test reference {r.id} of {s.user} is not the target's semantics in another style")
    for s in prep.split("train") + prep.split("valid"):
        _need(pair[s.target] not in held, f"{s.split} target {s.target} shows held-out pair {pair[s.target]}")
    tested = {pair[s.target] for s in tests}
    _need(tested == held, f"held-out pairs without a test sample: {sorted(held - tested)}")
    train_pairs = {pair[i] for i in prep.train_ids}
    n_pairs = len(ds.info["themes"]) * len(ds.info["semantics"])
    _need(len(train_pairs) == n_pairs - len(held), "a seen pair has no training item")
    return {
        "samples_per_split": dict(by_split),
        "users_per_split": dict(Counter(split_of.values())),
        "test_targets_held_out": f"{len(tests)}/{len(tests)}",
        "held_out_pairs_tested": f"{len(tested)}/{len(held)}",
        "train_images": len(prep.train_ids),
        "seen_pairs_trained": f"{len(train_pairs)}/{n_pairs - len(held)}",
        "prompt": prep.prompt,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--kind", choices=("glyphs", "badges", "cards"), required=True)
    p.add_argument("--users", type=int, default=240)
    p.add_argument("--seed", type=int, default=None, help="default: 0 for glyphs, 1 for badges, 2 for cards")
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--noisy-share", type=float, default=DEFAULT_SHARE)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--check", action="store_true", help="after building, verify it with drc's reader")
    p.add_argument("--check-only", action="store_true", help="verify an existing build; build nothing")
    a = p.parse_args(argv)
    # different default seeds: the two kinds get different held-out pairs and user plans
    seed = a.seed if a.seed is not None else DEFAULT_SEED[a.kind]
    if not a.check_only:
        stats = build(a.kind, a.out, a.users, seed, a.size, a.noisy_share)
        print(json.dumps(stats))
    if a.check or a.check_only:
        print(json.dumps({"check": "ok", **check(a.out)}))
    return 0


if __name__ == "__main__":
    from drc.errors import DrcError

    try:
        sys.exit(main())
    except DrcError as e:  # bad arguments or a bad folder: one line, no traceback
        sys.exit(f"error: {e}")
