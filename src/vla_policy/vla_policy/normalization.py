"""Normalisation of state and actions, saved as the checkpoint's `normalization.json`.

Statistics are keyed by dataset feature name (`observation.state`, `action`) as in the
dataset's `meta/stats.json`; a policy with relative actions also has `relative_action`, the
statistics of chunk targets minus the state at capture, computed in training. Two modes:
`mean_std` (zero mean, unit variance) and `quantile` (q01 -> -1, q99 -> +1, robust to
outliers). Values are stored as JSON floats, which round-trip float64 exactly.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vla_common.errors import ConfigError

MODES = ('mean_std', 'quantile')
FEATURES = ('observation.state', 'action')
RELATIVE_ACTION = 'relative_action'
_EPSILON = 1e-6  # keeps a constant joint (e.g. one never moved in the data) finite


@dataclass
class Normalizer:
    mode: str
    stats: dict[str, dict[str, np.ndarray]]
    """feature -> {mean, std, q01, q99, ...} (per-dimension arrays)."""

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ConfigError(f'normalization mode {self.mode!r} unknown; use one of {MODES}')
        needed = ('mean', 'std') if self.mode == 'mean_std' else ('q01', 'q99')
        for feature in FEATURES:
            have = self.stats.get(feature, {})
            missing = [k for k in needed if k not in have]
            if missing:
                raise ConfigError(
                    f'normalization stats for {feature!r} lack {", ".join(missing)} '
                    f'(needed by mode {self.mode!r})'
                )
        self.stats = {
            f: {k: np.asarray(v, dtype=np.float64) for k, v in s.items()}
            for f, s in self.stats.items()
        }

    def _center_scale(self, feature: str) -> tuple[np.ndarray, np.ndarray]:
        s = self.stats[feature]
        if self.mode == 'mean_std':
            return s['mean'], np.maximum(s['std'], _EPSILON)
        return (s['q99'] + s['q01']) / 2, np.maximum((s['q99'] - s['q01']) / 2, _EPSILON)

    def normalize(self, feature: str, values: np.ndarray) -> np.ndarray:
        center, scale = self._center_scale(feature)
        return (np.asarray(values, dtype=np.float64) - center) / scale

    def unnormalize(self, feature: str, values: np.ndarray) -> np.ndarray:
        center, scale = self._center_scale(feature)
        return np.asarray(values, dtype=np.float64) * scale + center

    def normalize_actions(
        self, actions: np.ndarray, state: np.ndarray, relative: list[bool]
    ) -> np.ndarray:
        """Absolute joint targets (..., D) -> the model's normalised actions.

        `relative` (D,) marks the joints whose actions the model sees minus `state` (broadcast
        against `actions`); with none marked, the plain `action` statistics apply.
        """
        if not any(relative):
            return self.normalize('action', actions)
        offset = np.asarray(state, dtype=np.float64) * np.asarray(relative)
        return self.normalize(RELATIVE_ACTION, np.asarray(actions, dtype=np.float64) - offset)

    def unnormalize_actions(
        self, values: np.ndarray, state: np.ndarray, relative: list[bool]
    ) -> np.ndarray:
        """The inverse of `normalize_actions`: absolute joint targets."""
        if not any(relative):
            return self.unnormalize('action', values)
        offset = np.asarray(state, dtype=np.float64) * np.asarray(relative)
        return self.unnormalize(RELATIVE_ACTION, values) + offset

    def to_json(self) -> dict:
        return {
            'mode': self.mode,
            'stats': {
                f: {k: v.tolist() for k, v in s.items()} for f, s in sorted(self.stats.items())
            },
        }

    def save(self, path: Path) -> None:
        Path(path).write_text(json.dumps(self.to_json(), indent=1) + '\n')

    @classmethod
    def load(cls, path: Path) -> Normalizer:
        try:
            data = json.loads(Path(path).read_text())
            return cls(mode=data['mode'], stats=data['stats'])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f'{path}: not a normalization file ({exc})') from None

    @classmethod
    def identity(cls, dim: int, mode: str = 'mean_std') -> Normalizer:
        """No-op statistics, for an untrained (randomly initialised) policy."""
        unit = {'mean': np.zeros(dim), 'std': np.ones(dim), 'q01': -np.ones(dim)}
        unit['q99'] = np.ones(dim)
        return cls(mode=mode, stats={f: dict(unit) for f in (*FEATURES, RELATIVE_ACTION)})
