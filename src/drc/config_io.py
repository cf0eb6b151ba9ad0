"""Typed dataclass configs as data: to and from dicts and YAML, dotted overrides, a stable hash.

Unknown keys are rejected with the list of valid ones, and overrides are parsed to the field's type,
so `stage2.train.steps=abc` fails loudly; a setting typed `Literal[...]` accepts only its choices.
Keys that were renamed (`RENAMED`) fail naming the new key.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from drc.atomic import atomic_write_text
from drc.errors import DrcError

T = TypeVar("T")

# Config keys renamed since runs were saved: old dotted key -> new one. A config file or an override
# that names the old key fails naming the new one; a saved run config (`load_yaml`) is read as renamed.
RENAMED = {"data.instruction": "data.prompt"}


def _check_renamed(key: str) -> None:
    if key in RENAMED:
        raise DrcError(f"config key {key!r} was renamed: use {RENAMED[key]!r}")


def rename_saved_keys(data: dict[str, Any]) -> dict[str, Any]:
    """A saved config's dict with the keys of `RENAMED` under their new names (a new copy)."""
    data = json.loads(json.dumps(data))
    for old, new in RENAMED.items():
        *head, last = old.split(".")
        node = data
        for p in head:
            node = node.get(p) if isinstance(node, dict) else None
        if isinstance(node, dict) and last in node:
            *new_head, new_last = new.split(".")
            value = node.pop(last)
            target = data
            for p in new_head:
                target = target.setdefault(p, {})
            target.setdefault(new_last, value)
    return data


def flat_keys(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """A nested dict as `{"section.key": value}` (dotted keys, as overrides name them)."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}.{k}" if prefix else k
        out.update(flat_keys(v, key) if isinstance(v, dict) else {key: v})
    return out


def to_dict(cfg: Any) -> dict[str, Any]:
    """Dataclass -> plain dict (tuples become lists so that YAML stays readable)."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(cfg):
        v = getattr(cfg, f.name)
        if dataclasses.is_dataclass(v):
            out[f.name] = to_dict(v)
        elif isinstance(v, tuple):
            out[f.name] = list(v)
        else:
            out[f.name] = v
    return out


def _coerce(value: Any, tp: Any, where: str) -> Any:
    """Check / convert `value` to the annotated type `tp`; raise DrcError naming `where`."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(value, a, where)
            except DrcError:
                continue
        raise DrcError(f"{where}: {value!r} is not a valid {tp}")
    if origin is typing.Literal:
        # a setting with a fixed set of choices: checked when the config is built, so that a typo
        # fails before a run folder is written, not when the stage that reads it starts
        choices = typing.get_args(tp)
        if value not in choices:
            raise DrcError(f"unknown {where} {value!r}; valid: {', '.join(map(str, choices))}")
        return value
    if origin is tuple:
        if isinstance(value, str):
            value = [v for v in value.strip("()[] ").split(",") if v.strip()]
        if not isinstance(value, (list, tuple)):
            raise DrcError(f"{where}: expected a list, got {value!r}")
        (elem, *rest) = typing.get_args(tp) or (Any,)
        return tuple(_coerce(v, elem, where) for v in value)
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "1", "yes", "on"):
            return True
        if isinstance(value, str) and value.lower() in ("false", "0", "no", "off"):
            return False
        raise DrcError(f"{where}: expected true/false, got {value!r}")
    if tp is int:
        if isinstance(value, bool):
            raise DrcError(f"{where}: expected an integer, got {value!r}")
        try:
            if isinstance(value, float) and not value.is_integer():
                raise ValueError
            return int(value)
        except (TypeError, ValueError):
            raise DrcError(f"{where}: expected an integer, got {value!r}") from None
    if tp is float:
        try:
            return float(value)
        except (TypeError, ValueError):
            raise DrcError(f"{where}: expected a number, got {value!r}") from None
    if tp is str:
        if not isinstance(value, (str, int, float)):
            raise DrcError(f"{where}: expected a string, got {value!r}")
        return str(value)
    return value


def from_dict(cls: type[T], data: dict[str, Any], where: str = "") -> T:
    """Build dataclass `cls` from a (possibly partial) dict; unknown keys are an error."""
    if not isinstance(data, dict):
        raise DrcError(f"{where or 'config'}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(fields))
    if unknown:
        _check_renamed((where + "." if where else "") + unknown[0])
        raise DrcError(
            f"unknown config key {(where + '.' if where else '') + unknown[0]!r}; valid keys: "
            + ", ".join(valid_keys(cls, where))
        )
    kwargs: dict[str, Any] = {}
    for name, value in data.items():
        tp = hints[name]
        key = f"{where}.{name}" if where else name
        if dataclasses.is_dataclass(tp):
            kwargs[name] = from_dict(tp, value, key)  # type: ignore[arg-type]
        else:
            kwargs[name] = _coerce(value, tp, key)
    return cls(**kwargs)


def choices(cls: Any, name: str) -> tuple[str, ...]:
    """The choices of setting `name` of dataclass `cls`, typed `Literal[...]`: `("window", "random")`."""
    options = tuple(_literal_options(typing.get_type_hints(cls)[name]))
    if not options:
        raise TypeError(f"{cls.__name__}.{name} is not a Literal setting")
    return options


@functools.cache
def _choice_fields(cls: type) -> tuple[tuple[str, tuple[Any, ...]], ...]:
    """(name, allowed values) of every `Literal[...]` setting of dataclass `cls` (None where optional)."""
    out = []
    for f in dataclasses.fields(cls):
        tp = typing.get_type_hints(cls)[f.name]
        values = tuple(_literal_options(tp, as_text=False))
        if values:
            optional = type(None) in typing.get_args(tp)
            out.append((f.name, values + ((None,) if optional else ())))
    return tuple(out)


class ChoiceChecked:
    """Base of the config dataclasses: every `Literal[...]` setting is checked when an instance is made,
    by `from_dict`, in Python, or by `dataclasses.replace`, so the code that reads a choice need not."""

    def __post_init__(self) -> None:
        for name, values in _choice_fields(type(self)):
            value = getattr(self, name)
            if value not in values:
                shown = ", ".join(str(v) for v in values if v is not None)
                raise DrcError(f"unknown {type(self).__name__}.{name} {value!r}; valid: {shown}")


def valid_keys(cls: Any, prefix: str = "") -> list[str]:
    """All dotted leaf keys of dataclass `cls`."""
    out: list[str] = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        key = f"{prefix}.{f.name}" if prefix else f.name
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp):
            out.extend(valid_keys(tp, key))
        else:
            out.append(key)
    return out


def annotated_yaml(cfg: Any, indent: str = "") -> str:
    """`cfg` (a dataclass) as YAML that `from_dict` reads back to an equal config, with each choice
    setting's choices as a comment: `renderer: "generator"  # generator | draft`."""
    hints = typing.get_type_hints(type(cfg))
    lines: list[str] = []
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if dataclasses.is_dataclass(value):
            lines += [f"{indent}{f.name}:", annotated_yaml(value, indent + "  ")]
            continue
        # JSON scalars and lists are YAML flow values, quoted wherever YAML needs it
        line = f"{indent}{f.name}: {json.dumps(list(value) if isinstance(value, tuple) else value)}"
        options = _literal_options(hints[f.name])
        if options:
            line += f"  # {' | '.join(options)}"
        lines.append(line)
    return "\n".join(lines)


def _literal_options(tp: Any, as_text: bool = True) -> list[Any]:
    """The choices of a `Literal[...]` type, also inside `Literal[...] | None` (as text, or as the
    values themselves); [] for other types."""
    if typing.get_origin(tp) is typing.Literal:
        return [str(a) if as_text else a for a in typing.get_args(tp)]
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return [o for a in typing.get_args(tp) for o in _literal_options(a, as_text)]
    return []


def apply_overrides(cfg: T, overrides: dict[str, Any]) -> T:
    """Return a copy of `cfg` with dotted `key=value` overrides applied (typed, validated)."""
    data = to_dict(cfg)
    keys = set(valid_keys(type(cfg)))
    for key, value in overrides.items():
        if key not in keys:
            _check_renamed(key)
            raise DrcError(f"unknown config key {key!r}; valid keys: {', '.join(sorted(keys))}")
        node = data
        parts = key.split(".")
        for p in parts[:-1]:
            node = node[p]
        node[parts[-1]] = value
    return from_dict(type(cfg), data)


def parse_overrides(items: list[str]) -> dict[str, str]:
    """`["a.b=1", "c=x"]` -> `{"a.b": "1", "c": "x"}`."""
    out: dict[str, str] = {}
    for item in items:
        if "=" not in item:
            raise DrcError(f"override {item!r} is not of the form key=value")
        k, v = item.split("=", 1)
        out[k.strip()] = v.strip()
    return out


def save_yaml(cfg: Any, path: str | Path) -> None:
    atomic_write_text(path, yaml.safe_dump(to_dict(cfg), sort_keys=False))


def read_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        raise DrcError(f"{path}: config file not found") from None
    except yaml.YAMLError as e:
        raise DrcError(f"{path}: not valid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise DrcError(f"{path}: a config file must hold a mapping")
    return data


def config_hash(cfg: Any) -> str:
    """Stable short hash of a config (a dataclass, or its `to_dict`), used to refuse checkpoints from
    another config."""
    blob = json.dumps(cfg if isinstance(cfg, dict) else to_dict(cfg), sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def deep_merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    out = dict(a)
    for k, v in b.items():
        out[k] = deep_merge(a[k], v) if isinstance(v, dict) and isinstance(a.get(k), dict) else v
    return out
