"""Joint limits and gains from the robot config, and their check against the robot's model."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vla_common.errors import ConfigError

_REQUIRED = ('lower', 'upper', 'velocity', 'acceleration')


@dataclass(frozen=True)
class JointLimits:
    """Per-joint limits, arrays in command order (the order of the config's `joints`)."""

    names: tuple[str, ...]
    lower: np.ndarray
    upper: np.ndarray
    velocity: np.ndarray
    acceleration: np.ndarray
    gripper: np.ndarray  # bool: gripper joints (their own unit, same limit rules)

    @classmethod
    def from_robot_config(cls, config: dict[str, Any]) -> JointLimits:
        joints = config.get('joints') or {}
        where = config.get('_path', 'robot config')
        if not joints:
            raise ConfigError(f'{where}: no "joints" section')
        rows = []
        for name, spec in joints.items():
            if not isinstance(spec, dict) or any(key not in spec for key in _REQUIRED):
                raise ConfigError(f'{where}: joint {name!r} needs {", ".join(_REQUIRED)}')
            values = [spec[key] for key in _REQUIRED]
            if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in values):
                raise ConfigError(f'{where}: joint {name!r}: limits must be finite numbers')
            lower, upper, velocity, acceleration = (float(v) for v in values)
            if not lower < upper or velocity <= 0 or acceleration <= 0:
                raise ConfigError(
                    f'{where}: joint {name!r}: need lower < upper and velocity, acceleration > 0'
                )
            rows.append((lower, upper, velocity, acceleration, bool(spec.get('gripper', False))))
        columns = list(zip(*rows, strict=True))
        return cls(
            names=tuple(joints),
            lower=np.array(columns[0]),
            upper=np.array(columns[1]),
            velocity=np.array(columns[2]),
            acceleration=np.array(columns[3]),
            gripper=np.array(columns[4], dtype=bool),
        )

    def clip(self, positions: np.ndarray) -> np.ndarray:
        return np.clip(positions, self.lower, self.upper)


@dataclass(frozen=True)
class PDGains:
    """PD gains for effort-controlled joints; `effort` marks them (the rest are positional)."""

    effort: np.ndarray  # bool per joint
    kp: np.ndarray
    kd: np.ndarray
    max_effort: np.ndarray

    @classmethod
    def from_robot_config(cls, config: dict[str, Any], names: tuple[str, ...]) -> PDGains:
        where = config.get('_path', 'robot config')
        joints = config['joints']
        effort, kp, kd, max_effort = [], [], [], []
        for name in names:
            spec = joints[name]
            mode = spec.get('mode', 'position')
            if mode not in ('position', 'effort'):
                raise ConfigError(f'{where}: joint {name!r}: mode must be position or effort')
            is_effort = mode == 'effort'
            gains = [spec.get(key, 0.0) for key in ('kp', 'kd', 'max_effort')]
            if is_effort and not (gains[0] > 0 and gains[1] >= 0 and gains[2] > 0):
                raise ConfigError(
                    f'{where}: effort joint {name!r} needs kp > 0, kd >= 0, max_effort > 0'
                )
            effort.append(is_effort)
            kp.append(float(gains[0]))
            kd.append(float(gains[1]))
            max_effort.append(float(gains[2]))
        return cls(np.array(effort, bool), np.array(kp), np.array(kd), np.array(max_effort))


def model_joint_ranges(path: str | Path) -> dict[str, tuple[float, float]]:
    """Joint position ranges of a URDF (<limit lower upper>) or MJCF (<joint range>) file."""
    root = ET.parse(path).getroot()
    ranges = {}
    if root.tag == 'robot':  # URDF
        for joint in root.iter('joint'):
            limit = joint.find('limit')
            if joint.get('type') in ('revolute', 'prismatic') and limit is not None:
                ranges[joint.get('name')] = (float(limit.get('lower')), float(limit.get('upper')))
    else:  # MJCF
        for joint in root.iter('joint'):
            if joint.get('name') and joint.get('range'):
                lower, upper = (float(v) for v in joint.get('range').split())
                ranges[joint.get('name')] = (lower, upper)
    return ranges


def wider_than_model(
    limits: JointLimits, model: dict[str, tuple[float, float]], tolerance: float = 1e-4
) -> list[str]:
    """The joints whose configured range exceeds the model's, one line each."""
    problems = []
    for i, name in enumerate(limits.names):
        if name not in model:
            problems.append(f'{name}: not in the model')
            continue
        lower, upper = model[name]
        if limits.lower[i] < lower - tolerance or limits.upper[i] > upper + tolerance:
            problems.append(
                f'{name}: configured [{limits.lower[i]}, {limits.upper[i]}] exceeds the '
                f'model [{lower}, {upper}]'
            )
    return problems
