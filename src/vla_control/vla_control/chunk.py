"""Action chunks as the controller uses them, and the checks an incoming chunk must pass.

Time semantics (design section 4): action i (0-based) is meant for `stamp + (i + 1) * step`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


class ChunkRejectedError(ValueError):
    """An incoming chunk is invalid; the message says why. The current schedule goes on."""


@dataclass(frozen=True)
class Chunk:
    sequence: int
    stamp: float  # capture time of the observation, seconds (ROS time)
    step: float  # seconds between actions
    positions: np.ndarray  # (H, D), columns in the controller's joint order

    @property
    def times(self) -> np.ndarray:
        return self.stamp + self.step * np.arange(1, len(self.positions) + 1)

    @property
    def end(self) -> float:
        return self.stamp + self.step * len(self.positions)


@dataclass(frozen=True)
class ChunkChecks:
    """How far a chunk's stamp may be from now: policies are late by their inference time."""

    max_future_s: float = 0.5  # a stamp ahead of now means clocks disagree
    max_age_s: float = 2.0  # an observation older than this is not worth acting on


def validate_chunk(
    *,
    sequence: int,
    stamp: float,
    step: float,
    joint_names: Sequence[str],
    horizon: int,
    positions: Sequence[float],
    joints: Sequence[str],
    last_sequence: int | None,
    now: float,
    checks: ChunkChecks,
) -> Chunk:
    """Return the chunk with columns reordered to `joints`, or raise ChunkRejectedError."""
    if last_sequence is not None and sequence <= last_sequence:
        raise ChunkRejectedError(
            f'sequence {sequence} is not after the last accepted {last_sequence}'
        )
    if not math.isfinite(step) or step <= 0:
        raise ChunkRejectedError(f'step must be > 0, got {step}')
    if horizon < 1:
        raise ChunkRejectedError('horizon must be >= 1')
    names = list(joint_names)
    if len(set(names)) != len(names):
        raise ChunkRejectedError(f'duplicate joint names in {names}')
    unknown = sorted(set(names) - set(joints))
    missing = [name for name in joints if name not in names]
    if unknown or missing:
        raise ChunkRejectedError(
            'joint names do not match the robot: '
            + (f'unknown {unknown} ' if unknown else '')
            + (f'missing {missing}' if missing else '')
        )
    values = np.asarray(positions, dtype=float)
    if values.size != horizon * len(names):
        raise ChunkRejectedError(
            f'{values.size} positions, expected horizon*joints = {horizon}*{len(names)}'
        )
    if not np.all(np.isfinite(values)):
        raise ChunkRejectedError('positions contain NaN or inf')
    if not math.isfinite(stamp):
        raise ChunkRejectedError('stamp is not finite')
    if stamp > now + checks.max_future_s:
        raise ChunkRejectedError(f'stamp is {stamp - now:.3f} s in the future (clock mismatch?)')
    if stamp < now - checks.max_age_s:
        raise ChunkRejectedError(f'stamp is {now - stamp:.3f} s old (max {checks.max_age_s} s)')
    chunk = Chunk(
        sequence,
        stamp,
        step,
        values.reshape(horizon, len(names))[:, [names.index(j) for j in joints]],
    )
    if chunk.end <= now:
        raise ChunkRejectedError(
            f'every action is in the past (last one {now - chunk.end:.3f} s ago)'
        )
    return chunk
