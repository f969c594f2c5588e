"""Sampling timed knots at any time: linear, or cubic Hermite with finite-difference slopes."""

from __future__ import annotations

import enum

import numpy as np


class Interpolation(enum.Enum):
    LINEAR = 'linear'
    CUBIC = 'cubic'


def sample(
    times: np.ndarray, positions: np.ndarray, t: float, method: Interpolation
) -> tuple[np.ndarray, np.ndarray]:
    """Position and velocity at `t` of the path through (times[k], positions[k]).

    Before the first knot and after the last the path holds still (velocity 0). Cubic uses
    Catmull-Rom slopes (central differences, one-sided at the ends), so it passes through every
    knot with continuous velocity.
    """
    if t <= times[0]:
        return positions[0].copy(), np.zeros(positions.shape[1])
    if t >= times[-1]:
        return positions[-1].copy(), np.zeros(positions.shape[1])
    k = int(np.searchsorted(times, t, side='right')) - 1
    t0, t1 = times[k], times[k + 1]
    h = t1 - t0
    s = (t - t0) / h
    p0, p1 = positions[k], positions[k + 1]
    if method is Interpolation.LINEAR:
        return p0 + s * (p1 - p0), (p1 - p0) / h
    m0, m1 = _slope(times, positions, k), _slope(times, positions, k + 1)
    s2, s3 = s * s, s * s * s
    position = (
        (2 * s3 - 3 * s2 + 1) * p0
        + (s3 - 2 * s2 + s) * h * m0
        + (-2 * s3 + 3 * s2) * p1
        + (s3 - s2) * h * m1
    )
    velocity = (
        (6 * s2 - 6 * s) * p0 / h
        + (3 * s2 - 4 * s + 1) * m0
        + (-6 * s2 + 6 * s) * p1 / h
        + (3 * s2 - 2 * s) * m1
    )
    return position, velocity


def _slope(times: np.ndarray, positions: np.ndarray, k: int) -> np.ndarray:
    last = len(times) - 1
    lo, hi = max(k - 1, 0), min(k + 1, last)
    return (positions[hi] - positions[lo]) / (times[hi] - times[lo])
