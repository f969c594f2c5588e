"""A robot's servo buses as one: joints by name, one held target, one health report.

The driver node's core. ALOHA has one bus per arm, the SO-101 one; either way consumers see
one joint_states with every joint. Modes:
- follower: at start the target is the measured position (enabling torque moves nothing),
  then `cycle` reads every bus and sends the held target; `command` replaces targets by name
  (all checked first: one bad value rejects the whole command and the last valid target
  holds; targets past a joint's recorded stops are clipped to them and counted).
- leader: torque off, so a person can move the arm; `cycle` only reads.
Fault (a bus with `max_consecutive_failures` failed reads in a row): that bus gets no new
goals; its servos keep torque and hold the last goal they received (torque off would drop
the arm). Health is ERROR. When a read succeeds again its target becomes the measured
position, so the arm does not jump to a target that went stale meanwhile.
"""

from __future__ import annotations

import enum
import math
import threading
from collections.abc import Sequence
from typing import Any

from vla_common.diagnostics import Health
from vla_common.diagnostics import Level
from vla_common.errors import ConfigError
from vla_common.errors import DeviceError
from vla_common.params import Param
from vla_control.servo.bus import BusError
from vla_control.servo.bus import open_bus
from vla_control.servo.calibration import ArmCalibration
from vla_control.servo.driver import ArmDriver
from vla_control.servo.driver import DriverConfig
from vla_control.servo.driver import TargetRejectedError

# The driver node's parameters (its ROS side is vla_control/driver_node.py).
PARAMETERS = (
    Param('robot', 'so101', 'Robot config config/robots/<robot>.yaml: joint names and limits.'),
    Param(
        'mode',
        'follower',
        'follower: joint_command -> servos -> joint_states; '
        'leader: torque off, positions on leader/joint_states.',
    ),
    Param('ports', ['/dev/ttyACM0'], 'Serial ports, one per bus (ALOHA: one per arm).'),
    Param('calibrations', [''], 'Calibration files written by vla_calibrate, one per port.'),
    Param('rate_hz', 100.0, 'Bus cycles per second: read, and for a follower write goals.'),
    Param('retries', 2, 'Extra attempts of a failed read (within the same cycle).'),
    Param(
        'max_consecutive_failures',
        10,
        'Failed reads in a row that make a bus fault: ERROR, no new goals (torque holds).',
    ),
    Param('torque_off_on_exit', True, 'Follower: torque off when the node stops (arm goes limp).'),
)


class Mode(enum.Enum):
    FOLLOWER = 'follower'
    LEADER = 'leader'


class ServoRobot:
    def __init__(self, drivers: Sequence[ArmDriver], mode: Mode):
        names = [name for driver in drivers for name in driver.names]
        if len(set(names)) != len(names):
            raise ConfigError(f'the calibrations share joints: {names}')
        self.drivers = list(drivers)
        self.mode = mode
        self.names = tuple(names)
        self.commands_accepted = 0
        self.commands_rejected = 0
        self.last_rejection = ''
        self.commands_clipped = 0  # accepted, with targets past a joint's recorded stops
        self.last_clipped: list[str] = []
        self.recoveries = 0
        self._target: dict[str, float] = {}
        self._lock = threading.Lock()  # `command` runs in another thread than `cycle`
        self._faulted = [False] * len(self.drivers)
        self._reported = (0, 0)  # rejected commands, failed reads already shown as WARN

    def start(self, now: float) -> None:
        """Connect every bus; leader: torque off; follower: hold where it is, torque on."""
        for driver in self.drivers:
            driver.connect()
            try:
                if self.mode is Mode.LEADER:
                    driver.torque(False)
                    continue
                measured = driver.read_positions(now)
                if measured is None:
                    raise BusError(f'no positions: {driver.stats.last_error}')
                hold = driver.clamp(measured)
                with self._lock:
                    self._target.update(hold)
                # Goal first: a servo whose torque comes on drives to whatever goal it holds.
                if not driver.write_goal(hold):
                    raise BusError(f'cannot write goals: {driver.stats.last_error}')
                driver.torque(True)
            except BusError as exc:
                raise DeviceError(f'{driver.bus.port}: {exc}') from None

    def command(self, names: Sequence[str], positions: Sequence[float]) -> None:
        """Replace the targets of the named joints; TargetRejectedError keeps the old ones."""
        try:
            if self.mode is Mode.LEADER:
                raise TargetRejectedError('a leader arm takes no commands')
            if len(names) != len(positions):
                raise TargetRejectedError(f'{len(names)} names but {len(positions)} positions')
            targets = dict(zip(names, positions, strict=True))
            unknown = [name for name in targets if name not in self.names]
            if unknown:
                raise TargetRejectedError(f'unknown joints {unknown}; known: {list(self.names)}')
            clipped = []
            for driver in self.drivers:
                mine = {name: v for name, v in targets.items() if name in driver.names}
                clipped += driver.check_targets(mine)[1]
        except TargetRejectedError as exc:
            self.commands_rejected += 1
            self.last_rejection = str(exc)
            raise
        with self._lock:
            self._target.update({name: float(value) for name, value in targets.items()})
        self.commands_accepted += 1
        if clipped:
            self.commands_clipped += 1
            self.last_clipped = clipped

    def cycle(self, now: float) -> dict[str, float] | None:
        """Read every bus (follower: then send the held targets).

        Returns every joint's position, or None if a bus gave none this cycle.
        """
        positions: dict[str, float] = {}
        complete = True
        for k, driver in enumerate(self.drivers):
            measured = driver.read_positions(now)
            if measured is None:
                complete = False
                self._faulted[k] = self._faulted[k] or driver.fault
            else:
                positions.update(measured)
                if self._faulted[k]:
                    self._faulted[k] = False
                    self.recoveries += 1
                    if self.mode is Mode.FOLLOWER:
                        with self._lock:
                            self._target.update(driver.clamp(measured))
            if self.mode is Mode.FOLLOWER and not self._faulted[k]:
                with self._lock:
                    target = {name: self._target[name] for name in driver.names}
                driver.write_goal(target)
        return positions if complete else None

    def stop(self, torque_off: bool) -> None:
        """Close every bus, turning torque off first if asked (best effort: it may be gone)."""
        for driver in self.drivers:
            if torque_off:
                try:
                    driver.torque(False)
                except BusError:
                    pass
            driver.bus.close()

    def health(self, now: float) -> Health:
        stats = [driver.stats for driver in self.drivers]
        ages = [driver.last_good_age(now) for driver in self.drivers]
        failed_reads = sum(s.failed_reads for s in stats)
        values = {
            'mode': self.mode.value,
            'buses': ' '.join(f'{d.calibration.bus}:{d.bus.port}' for d in self.drivers),
            'reads': str(sum(s.reads for s in stats)),
            'failed_reads': str(failed_reads),
            'failed_attempts': str(sum(s.failed_attempts for s in stats)),
            'consecutive_failed_reads': str(max(s.consecutive_failures for s in stats)),
            'last_good_age_s': '-' if None in ages else f'{max(ages):.3f}',
            'failed_writes': str(sum(s.failed_writes for s in stats)),
            'refused_writes': str(sum(s.refused_writes for s in stats)),
            'commands_accepted': str(self.commands_accepted),
            'commands_rejected': str(self.commands_rejected),
            'last_rejection': self.last_rejection,
            'commands_clipped_to_stops': str(self.commands_clipped),
            'last_clipped': ' '.join(self.last_clipped),
            'recoveries': str(self.recoveries),
            'last_bus_error': next((s.last_error for s in stats if s.last_error), ''),
        }
        faulted = [d for d in self.drivers if d.fault]
        if faulted:
            what = '; '.join(
                f'{d.bus.port}: {d.stats.consecutive_failures} failed reads in a row '
                f'({d.stats.last_error})'
                for d in faulted
            )
            safe = 'holding (torque on, no new goals)' if self.mode is Mode.FOLLOWER else ''
            return Health(Level.ERROR, f'bus fault: {what}; {safe}'.rstrip('; '), values)
        reported, self._reported = self._reported, (self.commands_rejected, failed_reads)
        if self.commands_rejected > reported[0]:
            return Health(Level.WARN, f'rejected joint_command: {self.last_rejection}', values)
        if failed_reads > reported[1]:
            return Health(Level.WARN, f'{failed_reads - reported[1]} failed reads', values)
        doing = 'following joint_command' if self.mode is Mode.FOLLOWER else 'reading the arm'
        return Health(Level.OK, doing, values)


def servo_robot_from_params(values: dict[str, Any], robot_config: dict[str, Any]) -> ServoRobot:
    """Load the calibrations and open the buses that PARAMETERS describe (not started)."""
    try:
        mode = Mode(values['mode'])
    except ValueError:
        raise ConfigError(f'mode must be follower or leader, got {values["mode"]!r}') from None
    rate = values['rate_hz']
    if not (math.isfinite(rate) and 1.0 <= rate <= 1000.0):
        raise ConfigError(f'rate_hz must be in [1, 1000], got {rate}')
    ports, files = values['ports'], values['calibrations']
    if not ports or len(ports) != len(files) or not all(files):
        raise ConfigError(
            f'give one calibration file per port (vla_calibrate writes them): ports {ports}, '
            f'calibrations {files}'
        )
    config = DriverConfig(values['retries'], values['max_consecutive_failures'])
    calibrations = [ArmCalibration.load(path, robot_config) for path in files]
    for calibration in calibrations:
        if calibration.arm != mode.value:
            raise ConfigError(
                f'{calibration.path} is for a {calibration.arm} arm, mode is {mode.value}'
            )
    drivers = [
        ArmDriver(open_bus(calibration.bus, port), calibration, config)
        for port, calibration in zip(ports, calibrations, strict=True)
    ]
    return ServoRobot(drivers, mode)
