"""Calibrating an arm: each joint's zero, its range and the gripper's stops (vla_calibrate).

With torque off, the person (1) puts the arm in the robot model's zero pose (SO-101: every
joint in the middle of its range), which gives the homing offsets; (2) moves every joint
slowly through its whole range, which gives range_min/range_max; (3) closes each gripper
fully, which gives `closed` (`open` is the other end of the gripper's range). Directions
cannot be measured: they are +1, or those of the file being replaced, so a direction fixed
by hand survives re-calibration.

`run_calibration` is the routine without a terminal: `ask(message, sample)` shows a step and
returns when the person is done, calling `sample()` as often as it likes meanwhile. The
command passes a terminal prompt; tests pass a function that moves emulated servos.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from vla_common.errors import ConfigError
from vla_common.errors import DeviceError
from vla_control.servo.bus import BusError
from vla_control.servo.bus import ServoBus
from vla_control.servo.bus import with_retries
from vla_control.servo.calibration import ArmCalibration
from vla_control.servo.models import TICKS_PER_REVOLUTION

Ask = Callable[[str, Callable[[], None]], None]

# Servo ids as the robots are built (LeRobot's SO-100/SO-101 motor setup; Interbotix ViperX /
# WidowX arms of ALOHA, one bus per arm, shadow servos 3 and 5 follow 2 and 4 in hardware).
_SO_IDS = {
    'shoulder_pan': 1,
    'shoulder_lift': 2,
    'elbow_flex': 3,
    'wrist_flex': 4,
    'wrist_roll': 5,
    'gripper': 6,
}
_ALOHA_IDS = {
    'waist': 1,
    'shoulder': 2,
    'elbow': 4,
    'forearm_roll': 6,
    'wrist_angle': 7,
    'wrist_rotate': 8,
    'gripper': 9,
}


@dataclass(frozen=True)
class RobotServos:
    bus: str
    sides: tuple[str, ...]  # arms on buses of their own, their joints prefixed `<side>_`
    ids: dict[str, int]  # servo id by joint name without the side prefix
    zero_pose: str  # the robot model's zero, as the person calibrating sees it
    gripper_unit: str  # the robot config's gripper unit (calibration.GRIPPER_UNITS)


_SO_ZERO = 'every joint in the middle of its range'
ROBOTS = {
    # SO-100/SO-101 grippers: radians of the servo, 0 = closed (config/robots/so101.yaml).
    'so101': RobotServos('feetech', ('',), _SO_IDS, _SO_ZERO, 'radians'),
    'so100': RobotServos('feetech', ('',), _SO_IDS, _SO_ZERO, 'radians'),
    # ALOHA grippers: finger opening in metres, closed and open at the config's limits.
    'aloha': RobotServos(
        'dynamixel',
        ('left', 'right'),
        _ALOHA_IDS,
        'the Interbotix home pose: upper arm vertical, forearm and gripper level, forward',
        'stops',
    ),
}
MIN_TRAVEL = 100  # ticks (~9 degrees) a joint must move in the sweep to count as moved
RETRIES = 4  # of a failed read or torque write (a person is waiting, not a control loop)

SWEEP_STEP = (
    'Move every joint slowly through its whole range, one after the other, then press Enter.'
)
CLOSE_STEP = 'Close the gripper fully, then press Enter.'


def zero_step(robot: str) -> str:
    return f'Put the arm in its zero pose ({ROBOTS[robot].zero_pose}), then press Enter.'


def servo_layout(robot: str, side: str = '') -> dict[str, int]:
    """Servo id by joint name of one arm (`side` left or right for ALOHA)."""
    if robot not in ROBOTS:
        raise ConfigError(f'no servo layout for robot {robot!r}; known: {", ".join(ROBOTS)}')
    sides = ROBOTS[robot].sides
    if side not in sides:
        raise ConfigError(f'{robot}: side must be one of {[s for s in sides if s] or ["(none)"]}')
    prefix = f'{side}_' if side else ''
    return {f'{prefix}{joint}': servo_id for joint, servo_id in ROBOTS[robot].ids.items()}


class CalibrationRecorder:
    """The routine's bookkeeping, fed raw readings (servo id -> ticks); no I/O."""

    def __init__(self, layout: Mapping[str, int], grippers: Sequence[str]):
        self.layout = dict(layout)
        self.grippers = [name for name in layout if name in grippers]
        self.homing: dict[str, int] = {}
        self.closed: dict[str, int] = {}
        self.low: dict[str, int] = {}
        self.high: dict[str, int] = {}
        self.wrapped: set[str] = set()
        self._last: dict[str, int] = {}

    def observe(self, ticks: Mapping[int, int]) -> None:
        for name, servo_id in self.layout.items():
            value = ticks[servo_id]
            previous = self._last.get(name)
            if previous is not None and abs(value - previous) > TICKS_PER_REVOLUTION // 2:
                self.wrapped.add(name)  # a jump of half a turn: the encoder passed 4095 -> 0
            self._last[name] = value
            self.low[name] = min(value, self.low.get(name, value))
            self.high[name] = max(value, self.high.get(name, value))

    def record_zero(self, ticks: Mapping[int, int]) -> None:
        self.observe(ticks)
        self.homing = {name: ticks[i] for name, i in self.layout.items()}

    def record_closed(self, ticks: Mapping[int, int]) -> None:
        self.observe(ticks)
        self.closed = {name: ticks[self.layout[name]] for name in self.grippers}

    def to_dict(self, robot: str, arm: str, directions: Mapping[str, int]) -> dict[str, Any]:
        """The calibration file's content; ConfigError says which step to redo."""
        if self.wrapped:
            raise ConfigError(
                f'{sorted(self.wrapped)} crossed the encoder zero (4095 -> 0) in their range; '
                'remount the horn so that the zero pose reads about 2048'
            )
        still = [n for n in self.layout if self.high[n] - self.low[n] < MIN_TRAVEL]
        if still:
            raise ConfigError(f'{still} did not move in the sweep: move every joint end to end')
        joints: dict[str, dict[str, int]] = {}
        for name, servo_id in self.layout.items():
            low, high = self.low[name], self.high[name]
            if name in self.grippers:
                closed = self.closed[name]
                opened = high if closed - low < high - closed else low
                unit = ROBOTS[robot].gripper_unit
                joints[name] = {'id': servo_id, 'closed': closed, 'open': opened, 'unit': unit}
            else:
                joints[name] = {
                    'id': servo_id,
                    'homing_offset': self.homing[name],
                    'direction': int(directions.get(name, 1)),
                    'range_min': low,
                    'range_max': high,
                }
        return {'robot': robot, 'arm': arm, 'bus': ROBOTS[robot].bus, 'joints': joints}


def read_ticks(bus: ServoBus, ids: Sequence[int]) -> dict[int, int]:
    """One reading of every servo, retried; DeviceError if the bus will not answer."""
    try:
        return with_retries(lambda: bus.read_positions(ids), RETRIES)
    except BusError as exc:
        raise DeviceError(f'cannot read the servos on {bus.port}: {exc}') from None


def run_calibration(
    bus: ServoBus,
    robot_config: Mapping[str, Any],
    layout: Mapping[str, int],
    arm: str,
    ask: Ask,
    directions: Mapping[str, int] | None = None,
) -> ArmCalibration:
    """Walk the person through the steps on `bus` (torque off) and return the calibration."""
    ids = list(layout.values())
    joints = robot_config.get('joints') or {}
    grippers = [name for name in layout if (joints.get(name) or {}).get('gripper')]
    recorder = CalibrationRecorder(layout, grippers)
    try:
        with_retries(lambda: bus.set_torque(ids, False), RETRIES)
    except BusError as exc:
        raise DeviceError(f'cannot turn torque off on {bus.port}: {exc}') from None

    def sample() -> None:
        try:
            recorder.observe(bus.read_positions(ids))
        except BusError:
            pass  # the next sample will do

    robot = robot_config['robot']
    ask(zero_step(robot), sample)
    recorder.record_zero(read_ticks(bus, ids))
    ask(SWEEP_STEP, sample)
    if grippers:
        ask(CLOSE_STEP, sample)
        recorder.record_closed(read_ticks(bus, ids))
    data = recorder.to_dict(robot, arm, directions or {})
    return ArmCalibration.from_dict(data, robot_config)
