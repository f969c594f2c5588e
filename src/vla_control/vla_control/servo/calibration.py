"""Per-arm calibration files: which servo drives each joint and how its ticks map to joint units.

One YAML file per arm (one serial bus), written by `vla_calibrate`:

    robot: so101
    arm: follower                  # follower or leader
    bus: feetech                   # feetech (STS3215) or dynamixel (X series, protocol 2.0)
    joints:                        # names of config/robots/<robot>.yaml
      shoulder_pan: {id: 1, homing_offset: 2047, direction: 1, range_min: 750, range_max: 3350}
      gripper: {id: 6, closed: 2030, open: 3400, unit: radians}

A joint reads `direction * (ticks - homing_offset) * 2 pi / 4096` radians: `homing_offset` is
the reading at the joint's zero (the robot model's zero pose, recorded by the calibration).
Targets outside the robot config's limits are refused; targets past the recorded stops
[range_min, range_max] are clipped to them (the arm cannot go further). A gripper records its
ticks fully closed and fully open and reads in the robot config's gripper unit: `radians` of
its servo from closed (0) toward open (SO-100/SO-101), or `stops`: closed is the config's
lower limit, open its upper one, linear between (ALOHA: finger opening in metres). Gripper
targets are not clipped to the stops: squeezing past closed is how a position servo grips.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from vla_common.errors import ConfigError
from vla_control.limits import JointLimits
from vla_control.servo.models import BUS_MODELS
from vla_control.servo.models import TICKS_PER_REVOLUTION

RADIANS_PER_TICK = 2 * math.pi / TICKS_PER_REVOLUTION
MAX_SERVO_ID = 252  # 253-255 are reserved by both protocols (254: broadcast)
ARMS = ('follower', 'leader')
GRIPPER_UNITS = ('radians', 'stops')


def ticks_to_radians(ticks: int, homing_offset: int, direction: int) -> float:
    return direction * (ticks - homing_offset) * RADIANS_PER_TICK


def radians_to_ticks(radians: float, homing_offset: int, direction: int) -> int:
    return homing_offset + direction * round(radians / RADIANS_PER_TICK)


def ticks_to_gripper(ticks: int, closed: int, open_: int, lower: float, upper: float) -> float:
    return lower + (ticks - closed) / (open_ - closed) * (upper - lower)


def gripper_to_ticks(value: float, closed: int, open_: int, lower: float, upper: float) -> int:
    return closed + round((value - lower) / (upper - lower) * (open_ - closed))


@dataclass(frozen=True)
class JointCalibration:
    """One joint's servo and conversion; `lower`/`upper` are the robot config's limits."""

    name: str
    id: int
    range_min: int  # ticks at the joint's stops (grippers: closed and open, sorted)
    range_max: int
    lower: float
    upper: float
    homing_offset: int = 0  # ticks at 0 rad (a gripper in radians: `closed`)
    direction: int = 1
    closed: int | None = None  # grippers only: ticks fully closed and fully open
    open: int | None = None
    unit: str = 'radians'  # grippers: radians from `closed`, or `stops` (see the module doc)

    @property
    def is_gripper(self) -> bool:
        return self.closed is not None

    def to_value(self, ticks: int) -> float:
        if self.unit == 'stops':
            return ticks_to_gripper(ticks, self.closed, self.open, self.lower, self.upper)
        return ticks_to_radians(ticks, self.homing_offset, self.direction)

    def to_ticks(self, value: float) -> int:
        if self.unit == 'stops':
            return gripper_to_ticks(value, self.closed, self.open, self.lower, self.upper)
        return radians_to_ticks(value, self.homing_offset, self.direction)

    def file_entry(self) -> dict[str, int | str]:
        if self.is_gripper:
            return {'id': self.id, 'closed': self.closed, 'open': self.open, 'unit': self.unit}
        return {
            'id': self.id,
            'homing_offset': self.homing_offset,
            'direction': self.direction,
            'range_min': self.range_min,
            'range_max': self.range_max,
        }


@dataclass(frozen=True)
class ArmCalibration:
    robot: str
    arm: str
    bus: str
    joints: tuple[JointCalibration, ...]  # in the robot config's joint order
    path: str = ''  # the file it came from, for messages

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(j.name for j in self.joints)

    @classmethod
    def from_dict(
        cls, data: Any, robot_config: Mapping[str, Any], where: str = 'calibration'
    ) -> ArmCalibration:
        """Check a calibration against the robot config it is for; ConfigError says what."""
        if not isinstance(data, dict):
            raise ConfigError(f'{where}: expected a mapping')
        limits = JointLimits.from_robot_config(dict(robot_config))
        robot = robot_config.get('robot')
        if data.get('robot') != robot:
            raise ConfigError(f'{where}: robot is {data.get("robot")!r}, expected {robot!r}')
        if data.get('arm') not in ARMS:
            raise ConfigError(f'{where}: arm must be one of {ARMS}, got {data.get("arm")!r}')
        if data.get('bus') not in BUS_MODELS:
            raise ConfigError(
                f'{where}: bus must be one of {tuple(BUS_MODELS)}, got {data.get("bus")!r}'
            )
        entries = data.get('joints')
        if not isinstance(entries, dict) or not entries:
            raise ConfigError(f'{where}: "joints" must be a non-empty mapping')
        unknown = [name for name in entries if name not in limits.names]
        if unknown:
            raise ConfigError(f'{where}: {unknown} are not joints of {robot}: {limits.names}')
        joints = []
        for i, name in enumerate(limits.names):
            if name in entries:
                spec = entries[name]
                lower, upper, gripper = limits.lower[i], limits.upper[i], limits.gripper[i]
                joints.append(_joint(name, spec, float(lower), float(upper), bool(gripper), where))
        ids = [j.id for j in joints]
        if len(set(ids)) != len(ids):
            raise ConfigError(f'{where}: servo ids must be unique, got {ids}')
        return cls(robot, data['arm'], data['bus'], tuple(joints), where)

    @classmethod
    def load(cls, path: str | Path, robot_config: Mapping[str, Any]) -> ArmCalibration:
        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text())
        except OSError as exc:
            raise ConfigError(f'cannot read calibration {path}: {exc.strerror}') from None
        except yaml.YAMLError as exc:
            raise ConfigError(f'malformed calibration {path}: {exc}') from None
        return cls.from_dict(data, robot_config, str(path))

    def to_dict(self) -> dict[str, Any]:
        return {
            'robot': self.robot,
            'arm': self.arm,
            'bus': self.bus,
            'joints': {j.name: j.file_entry() for j in self.joints},
        }

    def save(self, path: str | Path) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        header = f'# {self.robot} {self.arm} arm calibration, written by vla_calibrate.\n'
        path.write_text(header + yaml.safe_dump(self.to_dict(), sort_keys=False))


def _joint(name: str, spec: Any, lower: float, upper: float, gripper: bool, where: str):
    if gripper:
        numbers, keys = ('id', 'closed', 'open'), ('id', 'closed', 'open', 'unit')
    else:
        numbers = keys = ('id', 'homing_offset', 'direction', 'range_min', 'range_max')
    if not isinstance(spec, dict) or set(spec) != set(keys):
        kind = 'gripper' if gripper else 'joint'
        raise ConfigError(f'{where}: {kind} {name!r} needs exactly {", ".join(keys)}')
    if not all(isinstance(spec[k], int) and not isinstance(spec[k], bool) for k in numbers):
        raise ConfigError(f'{where}: joint {name!r}: {", ".join(numbers)} must be integers')
    if not 0 <= spec['id'] <= MAX_SERVO_ID:
        raise ConfigError(f'{where}: joint {name!r}: id must be in 0..{MAX_SERVO_ID}')
    ticks = [spec[k] for k in numbers[1:] if k != 'direction']
    if not all(0 <= t < TICKS_PER_REVOLUTION for t in ticks):
        last = TICKS_PER_REVOLUTION - 1
        raise ConfigError(f'{where}: joint {name!r}: ticks must be in 0..{last}')
    if gripper:
        closed, opened, unit = spec['closed'], spec['open'], spec['unit']
        if closed == opened:
            raise ConfigError(f'{where}: gripper {name!r}: closed and open must differ')
        if unit not in GRIPPER_UNITS:
            raise ConfigError(f'{where}: gripper {name!r}: unit must be one of {GRIPPER_UNITS}')
        low, high = sorted((closed, opened))
        direction = 1 if opened > closed else -1
        return JointCalibration(
            name, spec['id'], low, high, lower, upper, closed, direction, closed, opened, unit
        )
    if spec['direction'] not in (1, -1):
        raise ConfigError(f'{where}: joint {name!r}: direction must be 1 or -1')
    if not spec['range_min'] < spec['range_max']:
        raise ConfigError(f'{where}: joint {name!r}: need range_min < range_max')
    return JointCalibration(
        name,
        spec['id'],
        spec['range_min'],
        spec['range_max'],
        lower,
        upper,
        homing_offset=spec['homing_offset'],
        direction=spec['direction'],
    )
