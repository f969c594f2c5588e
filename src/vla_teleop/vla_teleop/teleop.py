"""Teleoperation core: the follower copies the leader.

Through the same safety filter as the controller (limits, velocity, acceleration, deviation
from the measured follower).

No rclpy; time is passed in. Rules: no leader message for `leader_timeout_s`, or no follower
state, means no command (the follower holds its last target); when the leader comes back the
follower ramps to it from where it is, never jumps; so it does when something else moved the
follower (a scene reset).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from vla_common.errors import ConfigError
from vla_common.params import Param
from vla_control.limits import JointLimits
from vla_control.safety import SafetyFilter
from vla_teleop.mapping import LeaderStateError
from vla_teleop.mapping import TeleopMapping

PARAMETERS = (
    Param('robot', 'so101', 'Robot config config/robots/<robot>.yaml: joints, limits, mapping.'),
    Param('rate_hz', 50.0, 'joint_command rate.'),
    Param('leader_timeout_s', 0.2, 'Stop commanding when the leader is silent this long.'),
)


JUMP_TOLERANCE = 0.05
"""rad: a follower reading may differ this much more than the joint could have moved."""


@dataclass
class TeleopCommand:
    names: tuple[str, ...]
    position: np.ndarray
    velocity: np.ndarray


class Teleop:
    def __init__(self, robot_config: dict[str, Any], rate_hz: float, leader_timeout_s: float):
        if not (math.isfinite(rate_hz) and 1 <= rate_hz <= 1000):
            raise ConfigError(f'rate_hz must be in [1, 1000], got {rate_hz}')
        if not (math.isfinite(leader_timeout_s) and leader_timeout_s > 0):
            raise ConfigError(f'leader_timeout_s must be > 0, got {leader_timeout_s}')
        self.mapping = TeleopMapping.from_robot_config(robot_config)
        self.limits = JointLimits.from_robot_config(robot_config)
        control = robot_config.get('control') or {}
        self.filter = SafetyFilter(self.limits, float(control.get('max_deviation', 0.5)))
        self.state_timeout_s = float(control.get('state_timeout_s', 0.1))
        self.dt = 1.0 / rate_hz
        self.leader_timeout_s = leader_timeout_s
        self._target: np.ndarray | None = None
        self._leader_time: float | None = None
        self._measured: np.ndarray | None = None
        self._state_time: float | None = None
        self._teleported = False
        self.rejected = 0
        self.last_rejection = ''

    def on_leader(self, names: Sequence[str], positions: Sequence[float], now: float) -> None:
        """Take a leader reading; raises LeaderStateError (counted) if it cannot be mapped."""
        try:
            self._target = self.mapping.map(names, positions)
        except LeaderStateError as exc:
            self.rejected += 1
            self.last_rejection = str(exc)
            raise
        self._leader_time = now

    def on_state(self, names: Sequence[str], positions: Sequence[float], now: float) -> None:
        index = {name: i for i, name in enumerate(names)}
        if any(n not in index or index[n] >= len(positions) for n in self.limits.names):
            return
        measured = np.array([positions[index[n]] for n in self.limits.names], dtype=float)
        if not np.all(np.isfinite(measured)):
            return
        if self._measured is not None:
            # Faster than any joint can move: a scene reset (or a hand) put it there. Ramping on
            # from the last command would swing it back toward where it was (after a sim reset,
            # toward the last episode's end and back, in the next recording's first frames).
            reach = 2.0 * self.limits.velocity * (now - self._state_time) + JUMP_TOLERANCE
            self._teleported |= bool(np.any(np.abs(measured - self._measured) > reach))
        self._measured, self._state_time = measured, now

    def status(self, now: float) -> str:
        if self._state_time is None or now - self._state_time > self.state_timeout_s:
            return 'no follower joint_states'
        if self._leader_time is None:
            return 'waiting for the leader'
        if now - self._leader_time > self.leader_timeout_s:
            return f'leader silent for {now - self._leader_time:.2f} s'
        return 'following'

    def step(self, now: float) -> TeleopCommand | None:
        """The follower command for this tick, or None when it must not be commanded."""
        if self.status(now) != 'following':
            self.filter.position = None  # restart from the measured follower position
            return None
        if not self.filter.ready or self._teleported:
            self.filter.reset(self._measured)
            self._teleported = False
        position, velocity, _ = self.filter.apply(self._target, self._measured, self.dt)
        return TeleopCommand(self.limits.names, position, velocity)
