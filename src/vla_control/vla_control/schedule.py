"""The schedule of timed targets built from action chunks, and how a new chunk merges in.

Each chunk becomes a track: its actions still in the future (latency compensation drops the
rest). Merge modes:

- `replace`: only the newest track counts; it starts with a knot at the arrival time holding
  the position being commanded then, so it ramps from there to its first action.
- `crossfade`: the previous result blends into the newest track over `crossfade_s` with a
  smoothstep weight (continuous position and velocity); the blend is the ramp, so the track
  holds its first action until then. The first track (nothing to blend from) ramps as replace.
- `temporal_ensemble`: at each time, every track that covers it contributes with ACT's weights
  exp(-m * i), i = 0 for the oldest (m = `ensemble_decay`; m > 0 favours older chunks). A
  track fades in over its first `crossfade_s` and, unless it is the newest, out over its last:
  without that the weights, and so the target, jump whenever a chunk arrives or ends.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

import numpy as np

from vla_common.errors import ConfigError
from vla_control.chunk import Chunk
from vla_control.interpolation import Interpolation
from vla_control.interpolation import sample


class MergeMode(enum.Enum):
    REPLACE = 'replace'
    CROSSFADE = 'crossfade'
    TEMPORAL_ENSEMBLE = 'temporal_ensemble'


@dataclass(frozen=True)
class ScheduleConfig:
    merge: MergeMode = MergeMode.CROSSFADE
    interpolation: Interpolation = Interpolation.CUBIC
    crossfade_s: float = 0.1
    ensemble_decay: float = 0.01
    max_tracks: int = 8

    def __post_init__(self) -> None:
        for name, kind in (('merge', MergeMode), ('interpolation', Interpolation)):
            value = getattr(self, name)
            if isinstance(value, str):
                try:
                    object.__setattr__(self, name, kind(value))
                except ValueError:
                    allowed = ', '.join(k.value for k in kind)
                    raise ConfigError(f'unknown {name} {value!r}; allowed: {allowed}') from None
        if not (math.isfinite(self.crossfade_s) and self.crossfade_s >= 0):
            raise ConfigError(f'crossfade_s must be >= 0, got {self.crossfade_s}')
        if not math.isfinite(self.ensemble_decay):
            raise ConfigError('ensemble_decay must be finite')
        if self.max_tracks < 1:
            raise ConfigError('max_tracks must be >= 1')


@dataclass(frozen=True)
class _Track:
    times: np.ndarray
    positions: np.ndarray

    @property
    def start(self) -> float:
        return float(self.times[0])

    @property
    def end(self) -> float:
        return float(self.times[-1])


class Schedule:
    """Timed joint targets from a stream of chunks; time is passed in, never read."""

    def __init__(self, config: ScheduleConfig):
        self.config = config
        self._tracks: list[_Track] = []

    def clear(self) -> None:
        self._tracks = []

    def add(self, chunk: Chunk, now: float, current: np.ndarray) -> None:
        """Merge `chunk` in at time `now`; `current` is the position being commanded now."""
        times = chunk.times
        future = times > now
        blended = self.config.merge is not MergeMode.REPLACE and self._tracks
        start_position = chunk.positions[future][0] if blended else current
        track = _Track(
            np.concatenate([[now], times[future]]),
            np.vstack([start_position[None, :], chunk.positions[future]]),
        )
        if self.config.merge is MergeMode.REPLACE:
            self._tracks = [track]
        else:
            self._tracks = [*self._tracks, track][-self.config.max_tracks :]

    def prune(self, now: float) -> None:
        """Forget tracks that can no longer influence any time >= now."""
        if self.config.merge is MergeMode.CROSSFADE:
            for k in range(len(self._tracks) - 1, 0, -1):
                if now >= self._tracks[k].start + self.config.crossfade_s:
                    del self._tracks[:k]
                    break
        elif self.config.merge is MergeMode.TEMPORAL_ENSEMBLE:
            self._tracks = [t for t in self._tracks if t.end >= now]

    def end(self) -> float | None:
        """When the schedule runs out (None: nothing scheduled)."""
        if not self._tracks:
            return None
        if self.config.merge is MergeMode.CROSSFADE:
            newest = self._tracks[-1]
            return max(newest.end, newest.start + self.config.crossfade_s)
        return max(t.end for t in self._tracks)

    def sample(self, t: float) -> tuple[np.ndarray, np.ndarray] | None:
        """Target position and velocity at `t`, or None when nothing is scheduled then."""
        end = self.end()
        if end is None or t > end:
            return None
        method = self.config.interpolation
        if self.config.merge is MergeMode.REPLACE:
            return sample(self._tracks[-1].times, self._tracks[-1].positions, t, method)
        if self.config.merge is MergeMode.CROSSFADE:
            return self._crossfade(t, method)
        return self._ensemble(t, method)

    def _crossfade(self, t: float, method: Interpolation) -> tuple[np.ndarray, np.ndarray]:
        first = self._tracks[0]
        q, qd = sample(first.times, first.positions, t, method)
        window = self.config.crossfade_s
        for track in self._tracks[1:]:
            q_new, qd_new = sample(track.times, track.positions, t, method)
            if window <= 0:
                weight, weight_rate = 1.0, 0.0
            else:
                s = min(max((t - track.start) / window, 0.0), 1.0)
                weight, weight_rate = s * s * (3 - 2 * s), 6 * s * (1 - s) / window
            qd = qd + weight * (qd_new - qd) + weight_rate * (q_new - q)
            q = q + weight * (q_new - q)
        return q, qd

    def _ensemble(self, t: float, method: Interpolation) -> tuple[np.ndarray, np.ndarray] | None:
        covering = [track for track in self._tracks if track.start <= t <= track.end]
        if not covering:
            return None
        weights = np.exp(-self.config.ensemble_decay * np.arange(len(covering)))
        window = self.config.crossfade_s
        if window > 0 and len(covering) > 1:
            for i, track in enumerate(covering):
                fade_in = min((t - track.start) / window, 1.0)
                fade_out = 1.0 if i == len(covering) - 1 else min((track.end - t) / window, 1.0)
                s = max(min(fade_in, fade_out), 0.0)
                weights[i] *= s * s * (3 - 2 * s)
        if weights.sum() <= 0:  # every track at a fade boundary: fall back to equal weights
            weights = np.ones(len(covering))
        weights /= weights.sum()
        q = np.zeros(covering[0].positions.shape[1])
        qd = np.zeros_like(q)
        for weight, track in zip(weights, covering, strict=True):
            q_k, qd_k = sample(track.times, track.positions, t, method)
            q += weight * q_k
            qd += weight * qd_k
        return q, qd
