"""Leader -> follower joint mapping: per joint offset, sign and scale, grippers by range.

Configured in the robot config's optional `teleop:` section; without it every joint maps to
the joint of the same name, one to one:

    teleop:
      joints:               # follower joint: {leader: name, sign: 1, scale: 1, offset: 0}
        shoulder_pan: {sign: -1}
      grippers:             # follower gripper: leader [closed, open] -> follower [closed, open]
        gripper: {leader: gripper, leader_range: [0.0, 1.2], follower_range: [-0.1, 1.5]}
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from vla_common.errors import ConfigError


class LeaderStateError(ValueError):
    """A leader message that cannot be mapped (missing joints, NaN); the follower holds."""


@dataclass(frozen=True)
class JointMap:
    leader: str
    sign: float = 1.0
    scale: float = 1.0
    offset: float = 0.0
    # grippers: linear from the leader's [closed, open] to the follower's [closed, open]
    leader_range: tuple[float, float] | None = None
    follower_range: tuple[float, float] | None = None

    def apply(self, leader: float) -> float:
        if self.leader_range is not None and self.follower_range is not None:
            (l0, l1), (f0, f1) = self.leader_range, self.follower_range
            fraction = (leader - l0) / (l1 - l0)
            return f0 + min(max(fraction, 0.0), 1.0) * (f1 - f0)
        return self.offset + self.sign * self.scale * leader


class TeleopMapping:
    def __init__(self, followers: Sequence[str], maps: dict[str, JointMap]):
        self.followers = tuple(followers)
        self.maps = maps

    @classmethod
    def from_robot_config(cls, config: dict[str, Any]) -> TeleopMapping:
        where = config.get('_path', 'robot config')
        followers = list(config.get('joints') or {})
        if not followers:
            raise ConfigError(f'{where}: no "joints" section to teleoperate')
        section = config.get('teleop') or {}
        maps = {name: JointMap(leader=name) for name in followers}
        for kind in ('joints', 'grippers'):
            for name, spec in (section.get(kind) or {}).items():
                if name not in maps:
                    raise ConfigError(f'{where}: teleop {kind}: {name!r} is not a robot joint')
                maps[name] = _joint_map(name, spec, gripper=kind == 'grippers', where=where)
        return cls(followers, maps)

    def map(self, names: Sequence[str], positions: Sequence[float]) -> np.ndarray:
        """Follower targets (in follower order) from one leader joint_states message."""
        index = {name: i for i, name in enumerate(names)}
        missing = [m.leader for m in self.maps.values() if m.leader not in index]
        if missing or len(positions) < len(names):
            raise LeaderStateError(f'leader joint_states lack {missing or "positions"}')
        values = [positions[index[self.maps[f].leader]] for f in self.followers]
        if not all(math.isfinite(v) for v in values):
            raise LeaderStateError('leader positions contain NaN or inf')
        return np.array(
            [self.maps[f].apply(v) for f, v in zip(self.followers, values, strict=True)]
        )


def _joint_map(name: str, spec: Any, gripper: bool, where: str) -> JointMap:
    if not isinstance(spec, dict):
        raise ConfigError(f'{where}: teleop mapping of {name!r} must be a mapping')
    try:
        if gripper:
            leader_range = tuple(float(v) for v in spec['leader_range'])
            follower_range = tuple(float(v) for v in spec['follower_range'])
            numbers = leader_range + follower_range
            if len(leader_range) != 2 or len(follower_range) != 2:
                raise ValueError('leader_range and follower_range need two values each')
            if leader_range[0] == leader_range[1]:
                raise ValueError('leader_range needs two different values')
            mapping = JointMap(
                spec.get('leader', name), leader_range=leader_range, follower_range=follower_range
            )
        else:
            mapping = JointMap(
                spec.get('leader', name),
                float(spec.get('sign', 1.0)),
                float(spec.get('scale', 1.0)),
                float(spec.get('offset', 0.0)),
            )
            numbers = (mapping.sign, mapping.scale, mapping.offset)
        if not all(math.isfinite(v) for v in numbers):
            raise ValueError('values must be finite numbers')
        return mapping
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f'{where}: teleop mapping of {name!r}: {exc}') from None
