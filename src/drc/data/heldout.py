"""The validation split: cases carved from TRAINING users, which no training sample shows.

The benchmark's own "valid" users are new users whose targets are pairs training has seen, so they
do not measure composition. This split does, without touching a test user:

- labelled data (every item has a style and a semantics): a few (style, semantics) pairs that
  training users have are held out. Every item of such a pair leaves training (the user's sequence
  is re-windowed without it) and becomes a validation case: history = the user's most recent other
  training items before it, reference = a training item with its semantics in another style. A pair
  qualifies only if it is no valid/test target's pair and its style and its semantics both stay in
  training through other items, so the case asks for an unseen combination of seen parts.
- otherwise (or where no pair qualifies): the last item of some training users is held out, a plain
  next-item case whose reference is an augmentation of the target (`Sample.reference` None).

Everything is drawn from the split seed, so `drc train` and `drc eval` carve the same cases.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Sequence

from drc.data.manifest import Dataset
from drc.data.samples import Sample, pick_reference, user_style, windows

HELDOUT = "heldout"  # the `Sample.split` of a validation case


def _pair(ds: Dataset, iid: str) -> tuple[str, str] | None:
    it = ds.items[iid]
    return (it.style, it.semantics) if it.style and it.semantics else None


def carve_heldout(
    ds: Dataset, samples: Sequence[Sample], history_len: int, share: float, seed: int
) -> list[Sample]:
    """`samples` with validation cases (split "heldout") in place of the training samples they remove.

    share: the wanted number of cases as a share of the training samples (about; 0 = none). Valid and
    test samples are returned unchanged, in their order.
    """
    train_users = [u for u in ds.users if any(s.user == u.id and s.split == "train" for s in samples)]
    n_train = sum(s.split == "train" for s in samples)
    want = round(share * n_train)
    if want <= 0 or not train_users:
        return list(samples)
    rng = random.Random(f"drc-heldout/{seed}")
    held = _held_pairs(ds, samples, train_users, want, rng) if ds.labelled else {}
    if not held:
        held = _held_last_items(train_users, history_len, want, rng)
    out = [s for s in samples if s.split != "train"]
    removed = {iid for items in held.values() for iid in items}
    train_items = {i for u in train_users for i in u.history if i not in removed}
    trained_styles = {ds.items[i].style for i in train_items}
    # a real reference must be a training item: no valid/test user's image, no held-out image
    not_train = set(ds.items) - train_items
    for user in train_users:
        kept = [i for i in user.history if i not in held.get(user.id, ())]
        out += [Sample(user.id, h, t, "train", None) for h, t in windows(kept, history_len)]
        style = user_style(ds, user) if ds.labelled else None
        for pos, iid in enumerate(user.history):
            if iid not in held.get(user.id, ()):
                continue
            hist = tuple(i for i in user.history[:pos] if i not in removed)[-history_len:]
            if not hist:
                continue  # nothing before it to personalise from
            ref = None
            if ds.labelled:
                r = random.Random(f"drc-heldout-ref/{seed}/{user.id}/{iid}")
                ref = pick_reference(ds, iid, style, r, not_train | set(user.history), trained_styles)
                if ref is None:
                    continue
            out.append(Sample(user.id, hist, iid, HELDOUT, ref))
    return out


def _held_pairs(
    ds: Dataset, samples: Sequence[Sample], train_users: Sequence, want: int, rng: random.Random
) -> dict[str, set[str]]:
    """user id -> the items held out, for pairs chosen until about `want` items are held out."""
    items_of: dict[tuple[str, str], list[tuple[str, str]]] = defaultdict(list)  # pair -> (user, item)
    for u in train_users:
        for iid in u.history:
            p = _pair(ds, iid)
            if p is not None:
                items_of[p].append((u.id, iid))
    forbidden = {_pair(ds, s.target) for s in samples if s.split != "train"}
    order = sorted(p for p in items_of if p not in forbidden)
    rng.shuffle(order)
    chosen: list[tuple[str, str]] = []
    n_held = 0
    for p in order:
        if n_held >= want:
            break
        if n_held + len(items_of[p]) > 1.5 * want + 1:
            continue  # a pair this common would take too much of training
        rest = [q for q in items_of if q not in chosen and q != p]
        # its style and its semantics must stay in training through other pairs
        if not any(q[0] == p[0] for q in rest) or not any(q[1] == p[1] for q in rest):
            continue
        chosen.append(p)
        n_held += len(items_of[p])
    held: dict[str, set[str]] = defaultdict(set)
    for p in chosen:
        for uid, iid in items_of[p]:
            held[uid].add(iid)
    return dict(held)


def _held_last_items(
    train_users: Sequence, history_len: int, want: int, rng: random.Random
) -> dict[str, set[str]]:
    """user id -> {their last item}, for about `want` users who keep a training window without it."""
    users = sorted(u.id for u in train_users if len(u.history) > history_len + 1)
    rng.shuffle(users)
    last = {u.id: u.history[-1] for u in train_users}
    return {uid: {last[uid]} for uid in users[:want]}
