"""Health reports of the cores, turned into diagnostic_msgs by the nodes (no ROS here)."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Level(enum.IntEnum):
    """Same values as diagnostic_msgs/DiagnosticStatus levels."""

    OK = 0
    WARN = 1
    ERROR = 2
    STALE = 3


@dataclass(frozen=True)
class Health:
    level: Level
    message: str
    values: dict[str, str]
