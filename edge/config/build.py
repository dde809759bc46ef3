"""Building a section from raw values: type coercion (TOML or environment text), range and choice
checks, unknown keys; every problem is collected, none raised."""

from __future__ import annotations

import dataclasses
import math
import typing
from typing import Any, Callable, Mapping

from edge.config.classes import DEFAULT_CLASSES, ClassSpec


def _field_type(cls: type, name: str) -> type:
    return typing.get_type_hints(cls)[name]


def _coerce(value: Any, typ: type, where: str, problems: list[str], from_text: bool) -> Any:
    """Convert one value to the field's type, or record a problem and return None."""
    if from_text:  # environment variables are text
        try:
            if typ is bool:
                low = value.strip().lower()
                if low in ("1", "true", "yes", "on"):
                    return True
                if low in ("0", "false", "no", "off"):
                    return False
                raise ValueError
            if typ is int:
                return int(value)
            if typ is float:
                return float(value)
            return value
        except ValueError:
            problems.append(f"{where} = {value!r}: expected {typ.__name__}")
            return None
    if typ is bool:
        if isinstance(value, bool):
            return value
    elif typ is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif typ is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif typ is str:
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
    problems.append(f"{where} = {value!r}: expected {typ.__name__}")
    return None


def _check_field(f: dataclasses.Field, value: Any, where: str, problems: list[str]) -> bool:
    meta = f.metadata
    if "choices" in meta and value not in meta["choices"]:
        problems.append(f"{where} = {value!r}: choose one of {', '.join(map(str, meta['choices']))}")
        return False
    if isinstance(value, float) and not math.isfinite(value):
        problems.append(f"{where} = {value!r}: must be a finite number")
        return False
    lo, hi = meta.get("min"), meta.get("max")
    if lo is not None and value < lo or hi is not None and value > hi:
        rng = f"{lo if lo is not None else '-inf'}..{hi if hi is not None else 'inf'}"
        problems.append(f"{where} = {value!r}: allowed range is {rng}")
        return False
    return True


def build_section(cls: type, raw: Mapping[str, Any], prefix: str, problems: list[str], text: bool = False,
           base: Any = None, where_of: Callable[[str], str] | None = None) -> Any:
    """Build one section dataclass from a mapping; unknown keys and bad values become problems.

    ``where_of(key)`` names a key in messages (default ``prefix.key``; the environment's variables
    are named as the user spelled them)."""
    base = base if base is not None else cls()
    names = {f.name: f for f in dataclasses.fields(cls)}
    changes = {}
    for key, value in raw.items():
        where = where_of(key) if where_of else f"{prefix}.{key}"
        if key not in names:
            problems.append(f"{where}: unknown key; valid keys are {', '.join(names)}")
            continue
        f = names[key]
        typed = _coerce(value, _field_type(cls, key), where, problems, text)
        if typed is None:
            continue
        if _check_field(f, typed, where, problems):
            changes[key] = typed
    obj = dataclasses.replace(base, **changes)
    if hasattr(obj, "validate"):
        problems.extend(obj.validate())
    return obj


def build_classes(raw: Any, problems: list[str]) -> tuple[ClassSpec, ...]:
    if not isinstance(raw, dict) or not raw:
        problems.append("classes: expected a table of labels, e.g. [classes.left] action = \"step\" value = -0.1")
        return DEFAULT_CLASSES
    specs = []
    for name, body in raw.items():
        if not isinstance(body, dict):
            problems.append(f"classes.{name}: expected a table with action, value, button")
            continue
        spec = build_section(ClassSpec, {**body, "name": name}, f"classes.{name}", problems)
        specs.append(spec)
    if len(specs) < 2:
        problems.append(f"classes: {len(specs)} class configured; at least 2 are needed to train a classifier")
    if sum(1 for s in specs if s.background) > 1:
        problems.append("classes: more than one class has background = true; mark exactly one (e.g. noise)")
    return tuple(specs)
