"""The safety filter every command passes through, and PD for effort-controlled joints.

Guarantees, for every output after `reset`: each joint inside [lower, upper], and moved by at
most velocity * dt since the previous output (so never a jump). Within those, it also limits
acceleration (except when a position limit stops a joint) and keeps commands within
`max_deviation` of the measured position (approached at the velocity limit, never jumped to).

It tracks a moving target with its velocity as feed-forward, and corrects the remaining error
no faster than it could still brake to a stop on it (|v| <= sqrt(2 a |e|)), so it settles on a
held target without overshoot.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vla_control.limits import JointLimits
from vla_control.limits import PDGains


@dataclass
class FilterReport:
    """Which joints a limit changed in the last step (for diagnostics counters)."""

    position: np.ndarray
    velocity: np.ndarray
    acceleration: np.ndarray
    deviation: np.ndarray


class SafetyFilter:
    def __init__(self, limits: JointLimits, max_deviation: float | np.ndarray):
        self.limits = limits
        self.max_deviation = np.broadcast_to(np.asarray(max_deviation, float), limits.lower.shape)
        self.position: np.ndarray | None = None  # last output
        self.velocity = np.zeros_like(limits.lower)

    @property
    def ready(self) -> bool:
        return self.position is not None

    def reset(self, measured: np.ndarray) -> None:
        """Start from the measured position, at rest (after start, enable, or a state gap)."""
        self.position = self.limits.clip(np.where(np.isfinite(measured), measured, 0.0))
        self.velocity = np.zeros_like(self.limits.lower)

    def apply(
        self,
        target: np.ndarray,
        measured: np.ndarray | None,
        dt: float,
        target_velocity: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray, FilterReport]:
        """The next safe command toward `target`; returns position, velocity and a report."""
        assert self.position is not None, 'reset() first'
        limits = self.limits
        previous = self.position
        goal = np.where(np.isfinite(target), target, previous)
        clipped_position = (goal < limits.lower) | (goal > limits.upper)
        goal = limits.clip(goal)
        clipped_deviation = np.zeros_like(clipped_position)
        if measured is not None:
            low, high = measured - self.max_deviation, measured + self.max_deviation
            clipped_deviation = (goal < low) | (goal > high)
            goal = np.clip(goal, low, high)
        feed_forward = np.zeros_like(goal)
        if target_velocity is not None:
            usable = np.isfinite(target_velocity) & ~clipped_position & ~clipped_deviation
            feed_forward = np.where(usable, target_velocity, 0.0)
        error = goal - (previous + feed_forward * dt)
        braking = np.sqrt(2.0 * limits.acceleration * np.abs(error))
        wanted = feed_forward + np.sign(error) * np.minimum(np.abs(error) / dt, braking)
        max_change = limits.acceleration * dt
        velocity = np.clip(wanted, self.velocity - max_change, self.velocity + max_change)
        clipped_acceleration = velocity != wanted
        capped = np.clip(velocity, -limits.velocity, limits.velocity)
        clipped_velocity = capped != velocity
        position = limits.clip(previous + capped * dt)
        self.velocity = (position - previous) / dt
        self.position = position
        report = FilterReport(
            clipped_position, clipped_velocity, clipped_acceleration, clipped_deviation
        )
        return position, self.velocity.copy(), report


def pd_effort(
    gains: PDGains,
    target: np.ndarray,
    target_velocity: np.ndarray,
    measured: np.ndarray,
    measured_velocity: np.ndarray,
) -> np.ndarray:
    """Torques for effort-controlled joints (0 for the others): PD with velocity feed-forward."""
    effort = gains.kp * (target - measured) + gains.kd * (target_velocity - measured_velocity)
    return np.where(gains.effort, np.clip(effort, -gains.max_effort, gains.max_effort), 0.0)
