"""Parameter tables: each node declares its parameters once, with defaults and descriptions.

The table is the single source of truth for a node's parameters: the node declares it, the
launch description and `config/*.yaml` only override values. No rclpy here, so tables and
their validation are testable without ROS.
"""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from vla_common.errors import ConfigError


@dataclass(frozen=True)
class Param:
    """One node parameter: its name, default (which also fixes its type) and meaning."""

    name: str
    default: bool | int | float | str | list
    description: str


def coerce(param: Param, value: Any) -> Any:
    """Return `value` converted to the type of `param.default`, or raise ConfigError.

    Integers are accepted for float parameters (YAML `fps: 30`); nothing else is converted,
    so that `fps: "30"` or `loop: 1` is reported instead of guessed at.
    """
    expected = type(param.default)
    if isinstance(value, bool) and expected is not bool:
        raise ConfigError(_type_message(param, value))
    if expected is float and isinstance(value, int):
        return float(value)
    if expected is list:
        if isinstance(value, (list, tuple)):
            return list(value)
        raise ConfigError(_type_message(param, value))
    if not isinstance(value, expected):
        raise ConfigError(_type_message(param, value))
    return value


def resolve(table: Iterable[Param], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Merge `overrides` into the table's defaults, checking names and types."""
    table = list(table)
    known = {p.name: p for p in table}
    unknown = sorted(set(overrides) - set(known))
    if unknown:
        raise ConfigError(
            f'unknown parameter(s) {", ".join(unknown)}; known: {", ".join(sorted(known))}'
        )
    return {p.name: coerce(p, overrides.get(p.name, p.default)) for p in table}


def _type_message(param: Param, value: Any) -> str:
    return (
        f'parameter {param.name!r} must be {type(param.default).__name__}, '
        f'got {value!r} ({type(value).__name__})'
    )
