"""One arm on one servo bus, in joint units: reads that never raise, writes that are checked.

A transfer that fails (no reply, corrupt reply) is retried `retries` times at once. If every
attempt of a read fails, the cycle's read fails: it is counted, `read_positions` returns
None and the last good value ages. `max_consecutive_failures` failed reads in a row put the
driver in its fault state until a read succeeds again; what to do meanwhile is the caller's
choice (`robot.ServoRobot` holds). Targets are checked against the robot's joint limits (and
clipped to the recorded stops, see calibration.py) before anything goes on the wire.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from vla_common.errors import ConfigError
from vla_common.errors import DeviceError
from vla_control.servo.bus import BusError
from vla_control.servo.bus import ServoBus
from vla_control.servo.bus import with_retries
from vla_control.servo.calibration import ArmCalibration
from vla_control.servo.models import TICKS_PER_REVOLUTION

LIMIT_TOLERANCE = 1e-6  # a target this far outside a joint limit is still taken (float noise)


class TargetRejectedError(ValueError):
    """A target that must not reach the servos; the message says why."""


@dataclass(frozen=True)
class DriverConfig:
    retries: int = 2  # extra attempts of a failed read, ping or torque write, at once
    max_consecutive_failures: int = 10  # failed reads in a row that make a fault

    def __post_init__(self) -> None:
        if not 0 <= self.retries <= 10:
            raise ConfigError(f'retries must be in 0..10, got {self.retries}')
        if self.max_consecutive_failures < 1:
            raise ConfigError(
                f'max_consecutive_failures must be >= 1, got {self.max_consecutive_failures}'
            )


@dataclass
class DriverStats:
    reads: int = 0  # reads that returned positions
    failed_attempts: int = 0  # transfers that failed, retried or not
    failed_reads: int = 0  # reads whose every attempt failed
    consecutive_failures: int = 0  # failed reads since the last good one
    failed_writes: int = 0
    refused_writes: int = 0  # targets refused before the wire
    last_error: str = ''


class ArmDriver:
    def __init__(
        self, bus: ServoBus, calibration: ArmCalibration, config: DriverConfig | None = None
    ):
        self.bus = bus
        self.calibration = calibration
        self.config = config or DriverConfig()
        self.stats = DriverStats()
        self._joints = {j.name: j for j in calibration.joints}
        self._ids = [j.id for j in calibration.joints]
        self._last_good_time: float | None = None

    @property
    def names(self) -> tuple[str, ...]:
        return self.calibration.names

    @property
    def fault(self) -> bool:
        return self.stats.consecutive_failures >= self.config.max_consecutive_failures

    def connect(self) -> None:
        """Check that every servo of the calibration answers; DeviceError names the missing."""
        missing, errors = [], []
        for joint in self.calibration.joints:
            try:
                self._attempt(lambda j=joint: self.bus.ping(j.id))
            except BusError as exc:
                missing.append(f'{joint.name} (id {joint.id})')
                errors.append(str(exc))
        if missing:
            raise DeviceError(
                f'no answer on {self.bus.port} from {", ".join(missing)}: {errors[0]}'
            )

    def read_positions(self, now: float) -> dict[str, float] | None:
        """Joint positions by name, or None when every attempt of this read failed."""
        try:
            ticks = self._attempt(lambda: self.bus.read_positions(self._ids))
        except BusError:
            self.stats.failed_reads += 1
            self.stats.consecutive_failures += 1
            return None
        self.stats.reads += 1
        self.stats.consecutive_failures = 0
        self._last_good_time = now
        return {j.name: j.to_value(ticks[j.id]) for j in self.calibration.joints}

    def last_good_age(self, now: float) -> float | None:
        return None if self._last_good_time is None else now - self._last_good_time

    def check_targets(self, targets: Mapping[str, float]) -> tuple[dict[int, int], list[str]]:
        """Goal ticks by servo id, and the joints clipped to their recorded stops.

        TargetRejectedError if any target is for an unknown joint, not finite, outside the
        joint limits or beyond the encoder's range.
        """
        unknown = [name for name in targets if name not in self._joints]
        if unknown:
            raise TargetRejectedError(f'unknown joints {unknown}; known: {list(self.names)}')
        values = {name: float(value) for name, value in targets.items()}
        joints = {name: self._joints[name] for name in values}
        bad = [name for name, value in values.items() if not math.isfinite(value)]
        if bad:
            raise TargetRejectedError(f'NaN or inf targets for {bad}')
        outside = [
            name
            for name, joint in joints.items()
            if not joint.lower - LIMIT_TOLERANCE <= values[name] <= joint.upper + LIMIT_TOLERANCE
        ]
        if outside:
            raise TargetRejectedError(f'targets outside the joint limits for {outside}')
        goals, clipped = {}, []
        for name, joint in joints.items():
            ticks = joint.to_ticks(values[name])
            if not joint.is_gripper and not joint.range_min <= ticks <= joint.range_max:
                ticks = min(max(ticks, joint.range_min), joint.range_max)
                clipped.append(name)
            goals[joint.id] = ticks
        wrapping = [n for n, j in joints.items() if not 0 <= goals[j.id] < TICKS_PER_REVOLUTION]
        if wrapping:
            raise TargetRejectedError(f"targets beyond the servo's encoder range for {wrapping}")
        return goals, clipped

    def clamp(self, values: Mapping[str, float]) -> dict[str, float]:
        """Values moved into the joint limits (for hold targets).

        An arm at rest may sit just past a limit; holding it there would be refused.
        """
        return {
            name: min(max(value, self._joints[name].lower), self._joints[name].upper)
            for name, value in values.items()
        }

    def write_goal(self, targets: Mapping[str, float]) -> bool:
        """Send targets by joint name; False if the bus failed. Bad targets raise, unsent."""
        try:
            goals, _ = self.check_targets(targets)
        except TargetRejectedError:
            self.stats.refused_writes += 1
            raise
        try:
            self.bus.write_goals(goals)
        except BusError as exc:
            self.stats.failed_writes += 1
            self.stats.last_error = str(exc)
            return False
        return True

    def torque(self, enabled: bool) -> None:
        """Torque on or off on every servo, retried; BusError if it could not be done.

        One servo at a time: retrying all of them as one transfer would need every reply of a
        noisy bus to arrive in the same attempt.
        """
        for servo in self._ids:
            self._attempt(lambda servo=servo: self.bus.set_torque([servo], enabled))

    def _attempt(self, transfer):
        return with_retries(transfer, self.config.retries, self._count_failure)

    def _count_failure(self, exc: BusError) -> None:
        self.stats.failed_attempts += 1
        self.stats.last_error = str(exc)
