"""The dataset format (docs/DESIGN.md section 3): reading, validating and writing a dataset folder.

A dataset is a folder with `items.jsonl` (`{"id", "image", "text"}`, optional `"style"`,
`"semantics"`), `users.jsonl` (`{"id", "history": [item ids, oldest first]}`, optional `"split"`)
and optionally `dataset.json` (`{"name", "instruction", ...}`, kept as `Dataset.info`).

Problems are reported as `file:line: problem`, where `file` is the path of the jsonl file or of the
image and `line` the 1-based line number in the jsonl file. A problem that belongs to no line (a
missing file, a dataset-wide condition, a broken image) is written `file: problem`, with no line
number; a broken image also names the item and the items.jsonl line that refers to it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

from PIL import Image

from drc.atomic import atomic_write_text
from drc.data.images import open_image
from drc.errors import DataError, DrcError

ITEMS_FILE = "items.jsonl"
USERS_FILE = "users.jsonl"
INFO_FILE = "dataset.json"
SPLITS = ("train", "valid", "test")
MAX_SHOWN_PROBLEMS = 100  # load_dataset's error keeps this many lines; validate_dataset returns all

# the image check decodes at this size: enough to run every decoder to the end of the file (so a
# truncated file fails) while JPEG draft / reduce keep a 6000-pixel image cheap
_CHECK_SIZE = (16, 16)


@dataclass(frozen=True)
class Item:
    """One image of the dataset; `style`/`semantics` labels exist on benchmarks only."""

    id: str
    image: str  # path relative to the dataset folder, '/'-separated
    text: str
    style: str | None = None
    semantics: str | None = None


@dataclass(frozen=True)
class User:
    """One user: the items they interacted with, oldest first."""

    id: str
    history: tuple[str, ...]
    split: str | None = None  # "train" | "valid" | "test" overrides the seeded split


@dataclass
class Dataset:
    root: Path
    items: dict[str, Item]
    users: list[User]
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def labelled(self) -> bool:
        """True when every item has both a style and a semantics label."""
        return bool(self.items) and all(it.style and it.semantics for it in self.items.values())

    def image_path(self, item_id: str) -> Path:
        if item_id not in self.items:
            raise DrcError(f"unknown item {item_id!r} in dataset {self.root}")
        return self.root / self.items[item_id].image

    def user(self, user_id: str) -> User:
        for u in self.users:
            if u.id == user_id:
                return u
        some = ", ".join(repr(u.id) for u in self.users[:5])
        more = f" (and {len(self.users) - 5} more)" if len(self.users) > 5 else ""
        raise DrcError(f"unknown user {user_id!r}; valid ids include {some}{more}")

    def num_samples(self, history_len: int = 5) -> int:
        """How many (k history items, target) windows the users' histories give."""
        return sum(max(0, len(u.history) - history_len) for u in self.users)

    def summary(self, history_len: int = 5) -> str:
        kind = "labelled" if self.labelled else "unlabelled"
        return (
            f"{len(self.items)} items, {len(self.users)} users, "
            f"{self.num_samples(history_len)} usable samples (k={history_len}), {kind}"
        )


# ---------------------------------------------------------------------------------------------
# reading


def _jsonl_objects(path: Path, problems: list[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-blank line that is a JSON object; others become problems."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        problems.append(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})")
        return
    except OSError as e:
        problems.append(f"{path}: cannot read ({e.strerror or e})")
        return
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            problems.append(f"{path}:{n}: malformed JSON ({e.msg} at column {e.colno})")
            continue
        if not isinstance(obj, dict):
            problems.append(f"{path}:{n}: expected a JSON object, got {type(obj).__name__}")
            continue
        yield n, obj


def _type_name(v: Any) -> str:
    return "null" if v is None else type(v).__name__


def _string_field(obj: dict[str, Any], key: str, where: str, problems: list[str], required: bool) -> Any:
    """The field's value if it is a string (non-empty for ids); None and a problem otherwise."""
    if key not in obj or (obj[key] is None and not required):
        if required:
            problems.append(f"{where}: missing required field {key!r}")
        return None
    v = obj[key]
    if not isinstance(v, str):
        problems.append(f"{where}: field {key!r} must be a string, got {_type_name(v)}")
        return None
    if key in ("id", "image") and not v.strip():
        problems.append(f"{where}: field {key!r} is empty")
        return None
    return v


def _image_path_problem(rel: str) -> str | None:
    """Why an item's image path is refused, or None: it must stay inside the dataset folder."""
    if PurePosixPath(rel).is_absolute() or PureWindowsPath(rel).is_absolute() or PureWindowsPath(rel).drive:
        return f"image path {rel!r} is absolute; it must be relative to the dataset folder"
    if ".." in PurePosixPath(rel.replace("\\", "/")).parts:
        return f"image path {rel!r} leaves the dataset folder ('..' is refused)"
    return None


def _read_items(path: Path, problems: list[str]) -> tuple[dict[str, Item], dict[str, int]]:
    items: dict[str, Item] = {}
    lines: dict[str, int] = {}
    for n, obj in _jsonl_objects(path, problems):
        where = f"{path}:{n}"
        before = len(problems)
        iid = _string_field(obj, "id", where, problems, required=True)
        image = _string_field(obj, "image", where, problems, required=True)
        text = _string_field(obj, "text", where, problems, required=True)
        style = _string_field(obj, "style", where, problems, required=False)
        semantics = _string_field(obj, "semantics", where, problems, required=False)
        if image is not None and (why := _image_path_problem(image)):
            problems.append(f"{where}: {why}")
        if iid is not None and iid in items:
            problems.append(f"{where}: duplicate item id {iid!r} (first on line {lines[iid]})")
            continue
        if len(problems) == before:
            items[iid] = Item(iid, image, text, style or None, semantics or None)
            lines[iid] = n
        elif iid is not None:
            lines.setdefault(iid, n)  # a broken item still claims its id: later duplicates are reported
    return items, lines


def _read_users(path: Path, item_ids: set[str] | None, problems: list[str]) -> list[User]:
    """Users; `item_ids` None means items.jsonl could not be read, so history ids go unchecked."""
    users: list[User] = []
    seen: dict[str, int] = {}
    for n, obj in _jsonl_objects(path, problems):
        where = f"{path}:{n}"
        before = len(problems)
        uid = _string_field(obj, "id", where, problems, required=True)
        if uid is not None and uid in seen:
            problems.append(f"{where}: duplicate user id {uid!r} (first on line {seen[uid]})")
        elif uid is not None:
            seen[uid] = n
        split = obj.get("split")
        if split is not None and split not in SPLITS:
            problems.append(f"{where}: field 'split' must be one of {', '.join(SPLITS)}, got {split!r}")
        history = obj.get("history")
        if "history" not in obj:
            problems.append(f"{where}: missing required field 'history'")
        elif not isinstance(history, list):
            problems.append(f"{where}: field 'history' must be a list of item ids, got {_type_name(history)}")
        else:
            bad = [h for h in history if not isinstance(h, str)]
            if bad:
                problems.append(f"{where}: history entries must be item id strings, got {bad[0]!r}")
            elif item_ids is not None:
                unknown = list(dict.fromkeys(h for h in history if h not in item_ids))
                if unknown:
                    shown = ", ".join(repr(u) for u in unknown[:5])
                    more = f" (and {len(unknown) - 5} more)" if len(unknown) > 5 else ""
                    problems.append(f"{where}: history names unknown item(s) {shown}{more}")
        if len(problems) == before:
            users.append(User(uid, tuple(history), split))
    return users


def _read_info(path: Path, problems: list[str]) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        problems.append(f"{path}: malformed JSON ({e})")
        return {}
    if not isinstance(info, dict):
        problems.append(f"{path}: expected a JSON object, got {_type_name(info)}")
        return {}
    for key in ("name", "instruction"):
        if key in info and not isinstance(info[key], str):
            problems.append(f"{path}: field {key!r} must be a string, got {_type_name(info[key])}")
    return info


def check_image(path: Path) -> str | None:
    """None if `path` is a readable image, else the problem (`path: ...`).

    `verify()` checks the file's structure and checksums without decoding; the reduced-size
    `open_image` then runs the decoder to the end, which is what catches truncation.
    """
    try:
        open_image(path, _CHECK_SIZE)
        with Image.open(path) as im:
            im.verify()
    except DataError as e:
        return str(e)
    except Exception as e:  # verify raises many types for corrupt data; each is a data problem
        return f"{path}: corrupt image ({str(e).splitlines()[0] if str(e) else type(e).__name__})"
    return None


def _check_images(
    root: Path, items: dict[str, Item], lines: dict[str, int], items_path: Path, problems: list[str]
) -> None:
    # threads, not processes: PIL releases the GIL while decoding, and 2000 small images take seconds
    paths = {it.id: root / it.image for it in items.values()}
    with ThreadPoolExecutor(max_workers=min(8, (os.cpu_count() or 2) * 2)) as pool:
        results = list(pool.map(check_image, paths.values()))
    for iid, why in zip(paths, results):
        if why is not None:
            problems.append(f"{why} (item {iid!r}, {items_path}:{lines[iid]})")


def validate_dataset(
    root: str | Path, history_len: int = 5, check_images: bool = True
) -> tuple[Dataset | None, list[str]]:
    """Read and check a dataset folder: (dataset, []) when valid, (None, problems) otherwise.

    Raises DrcError when `root` is not a folder at all (nothing to report line by line).
    """
    root = Path(root)
    if not root.exists():
        raise DrcError(f"dataset folder {str(root)!r} does not exist")
    if not root.is_dir():
        need = f"{ITEMS_FILE} and {USERS_FILE}"
        raise DrcError(f"dataset path {str(root)!r} is a file, not a folder with {need}")
    if history_len < 1:
        raise DrcError(f"history length must be at least 1, got {history_len}")
    problems: list[str] = []
    items_path, users_path = root / ITEMS_FILE, root / USERS_FILE
    items: dict[str, Item] = {}
    lines: dict[str, int] = {}
    if items_path.is_file():
        items, lines = _read_items(items_path, problems)
        if not items and not any(p.startswith(f"{items_path}:") for p in problems):
            problems.append(f"{items_path}: no items (the file has no JSON lines)")
    else:
        problems.append(f"{items_path}: missing (a dataset folder needs {ITEMS_FILE} and {USERS_FILE})")
    users: list[User] = []
    if users_path.is_file():
        # without any item line there is nothing to check histories against (no cascade of errors)
        known = set(lines) if lines else None
        users = _read_users(users_path, known, problems)
        longest = max((len(u.history) for u in users), default=0)
        if users and longest < history_len + 1:
            problems.append(
                f"{users_path}: no user has a history of at least k+1 = {history_len + 1} items, "
                f"so there is not one sample (longest history: {longest})"
            )
        elif not users and not any(p.startswith(f"{users_path}:") for p in problems):
            problems.append(f"{users_path}: no users (the file has no JSON lines)")
    else:
        problems.append(f"{users_path}: missing (a dataset folder needs {ITEMS_FILE} and {USERS_FILE})")
    info = _read_info(root / INFO_FILE, problems)
    if check_images and items:
        _check_images(root, items, lines, items_path, problems)
    if problems:
        return None, problems
    return Dataset(root, items, users, info), []


def load_dataset(root: str | Path, history_len: int = 5, check_images: bool = True) -> Dataset:
    """The dataset at `root`; DataError listing every problem (up to MAX_SHOWN_PROBLEMS) if invalid."""
    ds, problems = validate_dataset(root, history_len=history_len, check_images=check_images)
    if ds is None:
        shown = problems[:MAX_SHOWN_PROBLEMS]
        if len(problems) > len(shown):
            shown.append(f"... and {len(problems) - len(shown)} more problems")
        n = len(problems)
        raise DataError(f"invalid dataset {str(root)!r}: {n} problem{'s' if n != 1 else ''}", shown)
    return ds


# ---------------------------------------------------------------------------------------------
# writing


def _item_json(it: Item) -> dict[str, Any]:
    d: dict[str, Any] = {"id": it.id, "image": it.image, "text": it.text}
    if it.style is not None:
        d["style"] = it.style
    if it.semantics is not None:
        d["semantics"] = it.semantics
    return d


def _user_json(u: User) -> dict[str, Any]:
    d: dict[str, Any] = {"id": u.id, "history": list(u.history)}
    if u.split is not None:
        d["split"] = u.split
    return d


def write_dataset(root: str | Path, items: list[Item], users: list[User], info: dict | None = None) -> None:
    """Write items.jsonl, users.jsonl (and dataset.json if `info`) into `root`; images are the caller's.

    Each file is written to a temporary name and renamed, so a reader never sees half a file.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    dump = lambda d: json.dumps(d, ensure_ascii=False)  # noqa: E731
    atomic_write_text(root / ITEMS_FILE, "".join(dump(_item_json(it)) + "\n" for it in items))
    atomic_write_text(root / USERS_FILE, "".join(dump(_user_json(u)) + "\n" for u in users))
    if info is not None:
        atomic_write_text(root / INFO_FILE, json.dumps(info, ensure_ascii=False, indent=2) + "\n")
