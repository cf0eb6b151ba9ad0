"""The one table of methods: name, composer architecture, training overrides.

Every list of methods (`config.METHODS`, the CLI choices, `models.composers.METHOD_ARCHITECTURE`,
`config.method_overrides`, the type of the config's `method`) derives from `METHOD_TABLE`. The
ablations and entangled_augment differ from their parent only in training settings, not in the model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal


@dataclass(frozen=True)
class Method:
    name: str
    architecture: str  # the composer it builds (models/composers.py)
    overrides: dict[str, Any] = field(default_factory=dict)  # dotted config overrides


METHOD_TABLE: tuple[Method, ...] = (
    Method("drc", "drc"),
    Method("entangled", "entangled", {"stage1.enabled": False, "stage2.augment": False}),
    Method("entangled_augment", "entangled", {"stage1.enabled": False}),
    Method("reference_only", "reference_only", {"stage1.enabled": False}),
    Method("history_only", "history_only", {"stage1.enabled": False}),
    Method("drc_no_stage1", "drc", {"stage1.enabled": False}),
    Method("drc_uniform_sampling", "drc", {"stage1.alpha": 0.0}),
    Method("drc_no_augment", "drc", {"stage2.augment": False}),
)
METHODS: tuple[str, ...] = tuple(m.name for m in METHOD_TABLE)
# the run config's `method` setting, typed by the table (a subscript with a tuple is Literal[*names]), so
# that a config file naming no method of the table fails when the config is built
MethodName = Literal[METHODS]  # type: ignore[valid-type]
METHOD_ARCHITECTURE: dict[str, str] = {m.name: m.architecture for m in METHOD_TABLE}
METHOD_OVERRIDES: dict[str, dict[str, Any]] = {m.name: dict(m.overrides) for m in METHOD_TABLE}
