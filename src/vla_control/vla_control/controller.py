"""The controller core: chunks and joint states in, one safe command per tick out.

`step(now)` is called by the node's output loop at the control rate. Time is ROS time in
seconds, passed in. Watchdog rules:
- no joint_states yet, or none for `state_timeout_s`: no command (the robot keeps its last
  target), status ERROR; when states return, the filter restarts from the measured position;
- disabled: no command; enabling restarts from the measured position with an empty schedule;
- estop: latched until enabled again; commands hold, decelerating within limits;
- schedule ran out: hold the last scheduled target, reached within limits;
- a chunk after a gap starts from the position being commanded (its first knot), and the
  filter ramps there within limits.
"""

from __future__ import annotations

import enum
import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from typing import Any

import numpy as np

from vla_common.diagnostics import Health
from vla_common.diagnostics import Level
from vla_common.errors import ConfigError
from vla_common.params import Param
from vla_control.chunk import Chunk
from vla_control.chunk import ChunkChecks
from vla_control.chunk import ChunkRejectedError
from vla_control.chunk import validate_chunk
from vla_control.limits import JointLimits
from vla_control.limits import PDGains
from vla_control.safety import SafetyFilter
from vla_control.safety import pd_effort
from vla_control.schedule import Schedule
from vla_control.schedule import ScheduleConfig

PARAMETERS = (
    Param('robot', 'so101', 'Robot config config/robots/<robot>.yaml: joints, limits, gains.'),
    Param('rate_hz', 200.0, 'Command rate (100-500 Hz typical).'),
    Param('merge', 'crossfade', 'Chunk merge: replace, crossfade or temporal_ensemble.'),
    Param('crossfade_s', 0.1, 'crossfade: blend window in seconds.'),
    Param('ensemble_decay', 0.01, 'temporal_ensemble: ACT weight exp(-m*i), i=0 oldest.'),
    Param('interpolation', 'cubic', 'Between chunk actions: linear or cubic.'),
    Param('max_chunk_future_s', 0.5, 'Reject chunks stamped further than this in the future.'),
    Param('max_chunk_age_s', 2.0, 'Reject chunks whose observation is older than this.'),
    Param('start_enabled', True, 'Command as soon as chunks and joint states arrive.'),
    Param('publish_trajectory', False, 'Also send JointTrajectory for a ros2_control JTC.'),
    Param('trajectory_topic', 'joint_trajectory_controller/joint_trajectory', 'JTC topic.'),
)


@dataclass(frozen=True)
class ControllerConfig:
    rate_hz: float = 200.0
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    checks: ChunkChecks = field(default_factory=ChunkChecks)
    state_timeout_s: float = 0.1
    max_deviation: float = 0.5
    start_enabled: bool = True

    def __post_init__(self) -> None:
        if not (math.isfinite(self.rate_hz) and 1.0 <= self.rate_hz <= 2000.0):
            raise ConfigError(f'rate_hz must be in [1, 2000], got {self.rate_hz}')
        if not (self.state_timeout_s > 0 and self.max_deviation > 0):
            raise ConfigError('state_timeout_s and max_deviation must be > 0')

    @classmethod
    def from_params(cls, values: dict[str, Any], robot_config: dict[str, Any]) -> ControllerConfig:
        control = robot_config.get('control') or {}
        return cls(
            rate_hz=values['rate_hz'],
            schedule=ScheduleConfig(
                merge=values['merge'],
                interpolation=values['interpolation'],
                crossfade_s=values['crossfade_s'],
                ensemble_decay=values['ensemble_decay'],
            ),
            checks=ChunkChecks(values['max_chunk_future_s'], values['max_chunk_age_s']),
            state_timeout_s=float(control.get('state_timeout_s', 0.1)),
            max_deviation=float(control.get('max_deviation', 0.5)),
            start_enabled=values['start_enabled'],
        )


class Mode(enum.Enum):
    EXECUTING = 'executing'
    HOLDING = 'holding'  # enabled, nothing scheduled now
    ESTOP = 'estop'
    DISABLED = 'disabled'
    NO_STATE = 'no_state'  # no (fresh) joint_states: not commanding


@dataclass(frozen=True)
class Command:
    names: tuple[str, ...]
    position: np.ndarray
    velocity: np.ndarray
    effort: np.ndarray | None  # only when some joints are effort-controlled


@dataclass
class Counters:
    chunks_accepted: int = 0
    chunks_rejected: int = 0
    last_rejection: str = ''
    states_received: int = 0
    states_ignored: int = 0
    position_clips: int = 0
    velocity_clips: int = 0
    acceleration_clips: int = 0
    deviation_clips: int = 0


class Controller:
    def __init__(self, config: ControllerConfig, limits: JointLimits, gains: PDGains):
        self.config = config
        self.limits = limits
        self.gains = gains
        self.schedule = Schedule(config.schedule)
        self.filter = SafetyFilter(limits, config.max_deviation)
        self.counters = Counters()
        self.enabled = config.start_enabled
        self.estopped = False
        self.mode = Mode.NO_STATE
        self.last_sequence: int | None = None
        self.last_chunk_stamp: float | None = None
        self._measured: np.ndarray | None = None
        self._measured_velocity = np.zeros_like(limits.lower)
        self._state_time: float | None = None
        self._had_fresh_state = False
        self._pending_chunk_arrival: float | None = None
        self._hold_target: np.ndarray | None = None  # the last scheduled target
        # chunk arrival -> first command that uses it, for the last chunks
        self.chunk_latencies: deque[float] = deque(maxlen=200)
        self.reported_rejections = 0  # rejections already shown in diagnostics

    @property
    def dt(self) -> float:
        return 1.0 / self.config.rate_hz

    # --- inputs -------------------------------------------------------------------------------

    def on_chunk(
        self,
        *,
        sequence: int,
        stamp: float,
        step: float,
        joint_names: Sequence[str],
        horizon: int,
        positions: Sequence[float],
        now: float,
    ) -> Chunk:
        """Validate and merge a chunk; raises ChunkRejectedError (counted) when it is invalid."""
        try:
            chunk = validate_chunk(
                sequence=sequence, stamp=stamp, step=step, joint_names=joint_names,
                horizon=horizon, positions=positions, joints=self.limits.names,
                last_sequence=self.last_sequence, now=now, checks=self.config.checks,
            )  # fmt: skip
            if self.estopped:
                raise ChunkRejectedError('estop latched: call controller/enable to resume')
            if not self.enabled:
                raise ChunkRejectedError('controller disabled: call controller/enable')
            if self._measured is None:
                raise ChunkRejectedError('no joint_states yet: nothing to start from')
        except ChunkRejectedError as exc:
            self.counters.chunks_rejected += 1
            self.counters.last_rejection = str(exc)
            raise
        self.last_sequence = sequence
        self.last_chunk_stamp = stamp
        self.counters.chunks_accepted += 1
        self._pending_chunk_arrival = now
        start = self.filter.position if self.filter.ready else self.limits.clip(self._measured)
        self.schedule.add(chunk, now, start)
        return chunk

    def on_state(
        self,
        names: Sequence[str],
        positions: Sequence[float],
        velocities: Sequence[float],
        now: float,
    ) -> bool:
        """Take measured joint states (by name); False if they miss or garble a joint."""
        index = {name: i for i, name in enumerate(names)}
        if any(name not in index or index[name] >= len(positions) for name in self.limits.names):
            self.counters.states_ignored += 1
            return False
        q = np.array([positions[index[n]] for n in self.limits.names], dtype=float)
        if not np.all(np.isfinite(q)):
            self.counters.states_ignored += 1
            return False
        self.counters.states_received += 1
        if len(velocities) == len(names):
            qd = np.array([velocities[index[n]] for n in self.limits.names], dtype=float)
            self._measured_velocity = np.where(np.isfinite(qd), qd, 0.0)
        self._measured = q
        self._state_time = now
        return True

    def set_enabled(self, enabled: bool) -> None:
        """Enable (clears a latched estop) or disable (stop commanding).

        Enabling a disabled controller restarts from the measured position; enabling after an
        estop continues from the held command. Enabling an enabled controller changes nothing.
        """
        if enabled and self.enabled and not self.estopped:
            return
        if enabled and not self.enabled:
            self.filter.position = None
        self.enabled = enabled
        self.estopped = False
        self.schedule.clear()

    def estop(self) -> None:
        """Latch an emergency stop: hold still (decelerating) until enabled again."""
        self.estopped = True
        self.schedule.clear()
        self._hold_target = None

    # --- the tick -----------------------------------------------------------------------------

    def state_age(self, now: float) -> float | None:
        return None if self._state_time is None else now - self._state_time

    def step(self, now: float) -> Command | None:
        """The command for time `now`, or None when the controller must not command."""
        age = self.state_age(now)
        if age is None or age > self.config.state_timeout_s:
            self.mode = Mode.NO_STATE
            self.filter.position = None  # restart from the measured position when states return
            return None
        if not self.enabled:
            self.mode = Mode.DISABLED
            return None
        if not self.filter.ready:
            self.filter.reset(self._measured)
            self._hold_target = None
        self.schedule.prune(now)
        sampled = None if self.estopped else self.schedule.sample(now)
        target_velocity = None
        if self.estopped:
            self.mode = Mode.ESTOP
            target = self.filter.position  # stop where it is, decelerating
        elif sampled is None:
            self.mode = Mode.HOLDING
            end = self.schedule.end()
            if end is not None:  # just ran out: hold its final target, not the last tick's
                self._hold_target = self.schedule.sample(end)[0]
                self.schedule.clear()
            target = self.filter.position if self._hold_target is None else self._hold_target
        else:
            self.mode = Mode.EXECUTING
            target, target_velocity = sampled
            self._hold_target = target
            if self._pending_chunk_arrival is not None:
                self.chunk_latencies.append(now - self._pending_chunk_arrival)
                self._pending_chunk_arrival = None
        position, velocity, report = self.filter.apply(
            target, self._measured, self.dt, target_velocity
        )
        self._count(report)
        effort = None
        if self.gains.effort.any():
            effort = pd_effort(
                self.gains, position, velocity, self._measured, self._measured_velocity
            )
        return Command(self.limits.names, position, velocity, effort)

    def preview(self, now: float, duration: float, step: float) -> tuple[np.ndarray, np.ndarray]:
        """Where the commands will go over the next `duration` s, sampled every `step` s.

        Runs a copy of the safety filter at the control rate, so the preview obeys the same
        limits; used to hand the merged schedule to a joint_trajectory_controller.
        """
        preview = SafetyFilter(self.limits, self.config.max_deviation)
        preview.position = self.filter.position.copy()
        preview.velocity = self.filter.velocity.copy()
        times, points = [], []
        hold = preview.position if self._hold_target is None else self._hold_target
        ticks = max(1, round(step / self.dt))
        t, k = now, 0
        while t < now + duration:
            t += self.dt
            k += 1
            sampled = self.schedule.sample(t)
            if sampled is None:
                position, _, _ = preview.apply(hold, None, self.dt)
            else:
                hold = sampled[0]
                position, _, _ = preview.apply(sampled[0], None, self.dt, sampled[1])
            if k % ticks == 0:
                times.append(t - now)
                points.append(position)
        return np.array(times), np.array(points)

    def _count(self, report) -> None:
        self.counters.position_clips += int(report.position.any())
        self.counters.velocity_clips += int(report.velocity.any())
        self.counters.acceleration_clips += int(report.acceleration.any())
        self.counters.deviation_clips += int(report.deviation.any())


class PeriodStats:
    """Output-loop timing: how far each tick was from its absolute deadline."""

    def __init__(self, window: int = 2000):
        self._errors: deque[float] = deque(maxlen=window)
        self.overruns = 0  # ticks skipped because the loop fell more than a period behind

    def record(self, deadline: float, actual: float) -> None:
        self._errors.append(actual - deadline)

    def summary_ms(self) -> tuple[float, float, float] | None:
        """p50, p99 and max of |tick - deadline| in milliseconds over the window."""
        if not self._errors:
            return None
        errors = np.abs(np.fromiter(self._errors, float)) * 1e3
        return (
            float(np.percentile(errors, 50)),
            float(np.percentile(errors, 99)),
            float(errors.max()),
        )


def controller_health(controller: Controller, stats: PeriodStats, now: float) -> Health:
    """The diagnostics status of the controller: mode, timing, chunk flow, limits hit."""
    counters = controller.counters
    state_age = controller.state_age(now)
    chunk_age = None if controller.last_chunk_stamp is None else now - controller.last_chunk_stamp
    timing = stats.summary_ms()
    latencies = np.array(controller.chunk_latencies) * 1e3
    values = {
        'mode': controller.mode.value,
        'rate_hz': f'{controller.config.rate_hz:g}',
        'merge': controller.config.schedule.merge.value,
        'period_error_ms_p50_p99_max': (
            '-' if timing is None else ' '.join(f'{ms:.3f}' for ms in timing)
        ),
        'loop_overruns': str(stats.overruns),
        'state_age_s': '-' if state_age is None else f'{state_age:.3f}',
        'chunk_age_s': '-' if chunk_age is None else f'{chunk_age:.3f}',
        'chunk_to_command_ms_p50_max': (
            f'{np.median(latencies):.2f} {latencies.max():.2f}' if latencies.size else '-'
        ),
        'joint_states_received_ignored': f'{counters.states_received} {counters.states_ignored}',
        'chunks_accepted': str(counters.chunks_accepted),
        'chunks_rejected': str(counters.chunks_rejected),
        'last_rejection': counters.last_rejection,
        'ticks_clipped_position_velocity_acceleration_deviation': (
            f'{counters.position_clips} {counters.velocity_clips} '
            f'{counters.acceleration_clips} {counters.deviation_clips}'
        ),
    }
    mode = controller.mode
    if mode is Mode.NO_STATE:
        why = 'no joint_states yet' if state_age is None else f'joint_states {state_age:.2f} s old'
        return Health(Level.ERROR, f'not commanding: {why}', values)
    if mode is Mode.ESTOP:
        return Health(Level.ERROR, 'estop latched: call controller/enable to resume', values)
    if mode is Mode.DISABLED:
        return Health(Level.WARN, 'disabled: call controller/enable', values)
    if counters.last_rejection and counters.chunks_rejected > controller.reported_rejections:
        controller.reported_rejections = counters.chunks_rejected
        return Health(Level.WARN, f'rejected chunk: {counters.last_rejection}', values)
    return Health(Level.OK, mode.value, values)
