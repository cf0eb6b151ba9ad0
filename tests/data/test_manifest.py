"""The dataset format: round trip, properties, and one test per kind of bad input."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from drc.data.manifest import Dataset, Item, User, load_dataset, validate_dataset, write_dataset
from drc.errors import DataError, DrcError


def _read(path: Path) -> list[str]:
    return path.read_text().splitlines()


def _write(path: Path, lines: list[str]) -> None:
    path.write_text("".join(line + "\n" for line in lines))


def test_round_trip(tmp_path: Path) -> None:
    items = [
        Item("a", "img/a.png", "an apple", "flat", "fruit"),
        Item("b", "img/b.png", "ünïcode text ✓"),
        Item("c", "c.png", ""),
    ]
    users = [User("u1", ("a", "b", "c", "a", "b", "c")), User("u2", ("c",), "test")]
    (tmp_path / "img").mkdir()
    for it in items:
        Image.new("RGB", (4, 4), (1, 2, 3)).save(tmp_path / it.image)
    write_dataset(tmp_path, items, users, {"name": "x", "instruction": "a thing", "extra": [1, 2]})
    ds = load_dataset(tmp_path)
    assert ds.items == {it.id: it for it in items}
    assert list(ds.items) == ["a", "b", "c"]  # file order kept
    assert ds.users == users
    assert ds.info == {"name": "x", "instruction": "a thing", "extra": [1, 2]}
    assert ds.root == tmp_path
    # optional fields are omitted, not written as null
    second = json.loads(_read(tmp_path / "items.jsonl")[1])
    assert second == {"id": "b", "image": "img/b.png", "text": "ünïcode text ✓"}
    assert "split" not in json.loads(_read(tmp_path / "users.jsonl")[0])
    assert not list(tmp_path.glob(".*tmp"))  # no temporary files left behind


def test_properties(dataset_dir: Path) -> None:
    ds = load_dataset(dataset_dir)
    assert ds.labelled
    assert ds.info["name"] == "tiny"
    assert ds.summary() == "12 items, 6 users, 12 usable samples (k=5), labelled"
    assert ds.summary(history_len=3) == "12 items, 6 users, 24 usable samples (k=3), labelled"
    assert ds.image_path("red-cat") == dataset_dir / "img" / "red-cat.png"
    assert ds.user("u3").history[:2] == ("red-moon", "red-cat")
    with pytest.raises(DrcError, match=r"unknown user 'nobody'; valid ids include 'u0', .*\(and 1 more\)"):
        ds.user("nobody")
    with pytest.raises(DrcError, match="unknown item 'zz'"):
        ds.image_path("zz")


def test_unlabelled_and_no_info(tmp_path: Path, make_dataset) -> None:
    root = make_dataset(tmp_path / "u", labelled=False)
    ds = load_dataset(root)
    assert not ds.labelled and ds.info == {}
    assert ds.summary().endswith(", unlabelled")
    # one item missing one label makes the whole dataset unlabelled
    relabelled = {i: Item(i, it.image, it.text, "s", "m") for i, it in ds.items.items()}
    ds2 = Dataset(ds.root, relabelled, ds.users, {})
    assert ds2.labelled
    ds2.items["red-cat"] = Item("red-cat", "img/red-cat.png", "", "s", None)
    assert not ds2.labelled
    assert not Dataset(ds.root, {}, [], {}).labelled


def test_root_not_a_folder(tmp_path: Path) -> None:
    with pytest.raises(DrcError, match="does not exist"):
        load_dataset(tmp_path / "nope")
    (tmp_path / "f.txt").write_text("x")
    with pytest.raises(DrcError, match="is a file, not a folder"):
        validate_dataset(tmp_path / "f.txt")


# ---------------------------------------------------------------------------------------------
# bad inputs: each mutation of a valid dataset must give its own message naming the file


def _png_bytes(size: int = 48) -> bytes:
    arr = np.random.default_rng(1).integers(0, 256, (size, size, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "PNG")
    return buf.getvalue()


def _edit_item(root: Path, n: int, **fields) -> None:
    lines = _read(root / "items.jsonl")
    obj = json.loads(lines[n - 1])
    for k, v in fields.items():
        if v is ...:
            obj.pop(k)
        else:
            obj[k] = v
    lines[n - 1] = json.dumps(obj)
    _write(root / "items.jsonl", lines)


def _edit_user(root: Path, n: int, **fields) -> None:
    lines = _read(root / "users.jsonl")
    obj = json.loads(lines[n - 1])
    obj.update(fields)
    lines[n - 1] = json.dumps(obj)
    _write(root / "users.jsonl", lines)


def _corrupt_png_data(root: Path) -> None:
    data = bytearray(_png_bytes())
    i = data.index(b"IDAT") + 40
    data[i : i + 30] = bytes(30)  # zeroed compressed data: CRC mismatch / zlib error
    (root / "img" / "red-dog.png").write_bytes(bytes(data))


def _append_line(root: Path, name: str, line: str) -> None:
    _write(root / name, [*_read(root / name), line])


# (id, mutation, file whose path must prefix the problem, line number or None, words in the problem)
CASES = [
    (
        "missing_image",
        lambda r: (r / "img" / "red-cat.png").unlink(),
        "img/red-cat.png",
        None,
        ["image not found", "item 'red-cat'", "items.jsonl:1"],
    ),
    (
        "zero_byte_image",
        lambda r: (r / "img" / "red-cat.png").write_bytes(b""),
        "img/red-cat.png",
        None,
        ["empty file", "0 bytes"],
    ),
    (
        "truncated_image",
        lambda r: (r / "img" / "red-dog.png").write_bytes(_png_bytes()[:-300]),
        "img/red-dog.png",
        None,
        ["truncated", "item 'red-dog'"],
    ),
    ("corrupt_image_data", _corrupt_png_data, "img/red-dog.png", None, ["image", "item 'red-dog'"]),
    (
        "not_an_image",
        lambda r: (r / "img" / "red-sun.png").write_text("hello, I am text"),
        "img/red-sun.png",
        None,
        ["not an image"],
    ),
    (
        "duplicate_item",
        lambda r: _append_line(r, "items.jsonl", _read(r / "items.jsonl")[0]),
        "items.jsonl",
        13,
        ["duplicate item id 'red-cat'", "first on line 1"],
    ),
    (
        "unknown_history_item",
        lambda r: _edit_user(r, 2, history=["green-cat"] * 6 + ["purple-cow"]),
        "users.jsonl",
        2,
        ["unknown item", "'purple-cow'"],
    ),
    (
        "history_not_list",
        lambda r: _edit_user(r, 3, history="red-cat"),
        "users.jsonl",
        3,
        ["'history'", "must be a list"],
    ),
    (
        "history_entry_not_str",
        lambda r: _edit_user(r, 1, history=["red-cat", 3]),
        "users.jsonl",
        1,
        ["history entries", "3"],
    ),
    (
        "user_missing_history",
        lambda r: _append_line(r, "users.jsonl", '{"id": "u9"}'),
        "users.jsonl",
        7,
        ["missing required field 'history'"],
    ),
    (
        "duplicate_user",
        lambda r: _append_line(r, "users.jsonl", _read(r / "users.jsonl")[0]),
        "users.jsonl",
        7,
        ["duplicate user id 'u0'"],
    ),
    (
        "bad_split",
        lambda r: _edit_user(r, 1, split="holdout"),
        "users.jsonl",
        1,
        ["'split'", "train, valid, test", "'holdout'"],
    ),
    (
        "malformed_json",
        lambda r: _write(
            r / "items.jsonl", _read(r / "items.jsonl")[:1] + ['{"id": "x",'] + _read(r / "items.jsonl")[1:]
        ),
        "items.jsonl",
        2,
        ["malformed JSON"],
    ),
    (
        "not_an_object",
        lambda r: _append_line(r, "users.jsonl", '["u7", []]'),
        "users.jsonl",
        7,
        ["expected a JSON object", "list"],
    ),
    (
        "missing_field",
        lambda r: _edit_item(r, 3, text=...),
        "items.jsonl",
        3,
        ["missing required field 'text'"],
    ),
    (
        "wrong_type",
        lambda r: _edit_item(r, 4, text=5),
        "items.jsonl",
        4,
        ["field 'text' must be a string", "int"],
    ),
    (
        "label_wrong_type",
        lambda r: _edit_item(r, 4, style=["a"]),
        "items.jsonl",
        4,
        ["field 'style' must be a string"],
    ),
    ("id_not_string", lambda r: _edit_item(r, 2, id=17), "items.jsonl", 2, ["field 'id' must be a string"]),
    (
        "dotdot_path",
        lambda r: _edit_item(r, 5, image="../outside.png"),
        "items.jsonl",
        5,
        ["'../outside.png'", "leaves the dataset folder"],
    ),
    (
        "nested_dotdot_path",
        lambda r: _edit_item(r, 5, image="img/../../x.png"),
        "items.jsonl",
        5,
        ["leaves the dataset folder"],
    ),
    (
        "absolute_path",
        lambda r: _edit_item(r, 6, image="/etc/passwd"),
        "items.jsonl",
        6,
        ["'/etc/passwd'", "absolute"],
    ),
    (
        "missing_items_file",
        lambda r: (r / "items.jsonl").unlink(),
        "items.jsonl",
        None,
        ["missing", "needs items.jsonl and users.jsonl"],
    ),
    (
        "missing_users_file",
        lambda r: (r / "users.jsonl").unlink(),
        "users.jsonl",
        None,
        ["missing", "needs items.jsonl and users.jsonl"],
    ),
    ("no_items", lambda r: (r / "items.jsonl").write_text("\n"), "items.jsonl", None, ["no items"]),
    ("no_users", lambda r: (r / "users.jsonl").write_text(""), "users.jsonl", None, ["no users"]),
    (
        "histories_too_short",
        lambda r: _write(
            r / "users.jsonl", [json.dumps({"id": f"s{i}", "history": ["red-cat"] * 5}) for i in range(3)]
        ),
        "users.jsonl",
        None,
        ["no user has a history of at least k+1 = 6", "longest history: 5"],
    ),
    (
        "bad_dataset_json",
        lambda r: (r / "dataset.json").write_text("{name: 1"),
        "dataset.json",
        None,
        ["malformed JSON"],
    ),
    (
        "dataset_json_not_object",
        lambda r: (r / "dataset.json").write_text("[1]"),
        "dataset.json",
        None,
        ["expected a JSON object"],
    ),
]


@pytest.mark.parametrize(
    ("mutate", "file", "line", "words"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_bad_input(dataset_dir: Path, mutate, file: str, line: int | None, words: list[str], capsys) -> None:
    mutate(dataset_dir)
    ds, problems = validate_dataset(dataset_dir)
    assert ds is None
    prefix = f"{dataset_dir / file}:{line}: " if line is not None else f"{dataset_dir / file}: "
    matching = [p for p in problems if p.startswith(prefix) and all(w in p for w in words)]
    assert matching, f"no problem starting {prefix!r} with {words}; got:\n" + "\n".join(problems)
    with pytest.raises(DataError) as e:
        load_dataset(dataset_dir)
    assert matching[0] in e.value.problems
    assert "invalid dataset" in str(e.value)

    from drc.cli import main

    capsys.readouterr()
    assert main(["data", "check", str(dataset_dir)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert matching[0] in err.splitlines()
    assert "Traceback" not in err
    assert err.splitlines()[-1].startswith("drc data: error: invalid dataset")


def test_every_problem_reported_at_once(dataset_dir: Path) -> None:
    (dataset_dir / "img" / "red-cat.png").unlink()
    _edit_item(dataset_dir, 3, text=...)
    _edit_user(dataset_dir, 2, history="x")
    _, problems = validate_dataset(dataset_dir)
    assert len(problems) == 3, problems
    # no cascade: a broken item line still counts as a known id for the users' histories
    _, problems = validate_dataset(dataset_dir, check_images=False)
    assert len(problems) == 2


def test_check_images_off(dataset_dir: Path) -> None:
    (dataset_dir / "img" / "red-cat.png").write_text("not a png")
    assert validate_dataset(dataset_dir, check_images=False)[1] == []
    assert validate_dataset(dataset_dir)[1] != []


def test_history_len_matters(dataset_dir: Path) -> None:
    assert validate_dataset(dataset_dir, history_len=6)[1] == []
    _, problems = validate_dataset(dataset_dir, history_len=7)
    assert any("k+1 = 8" in p for p in problems)
    with pytest.raises(DrcError, match="at least 1"):
        validate_dataset(dataset_dir, history_len=0)


def test_many_problems_are_capped_in_the_error(tmp_path: Path) -> None:
    items = [Item(f"i{n}", f"img/{n}.png", "") for n in range(150)]
    write_dataset(tmp_path, items, [User("u", tuple(it.id for it in items))])
    _, problems = validate_dataset(tmp_path)
    assert len(problems) == 150
    with pytest.raises(DataError) as e:
        load_dataset(tmp_path)
    assert len(e.value.problems) == 101 and e.value.problems[-1] == "... and 50 more problems"
    assert "150 problems" in str(e.value)
