"""Recorder core: samples the latest state, action and images on a fixed clock into a dataset.

No rclpy; time is passed in. Each tick at the dataset fps takes the newest value of every
source. A source with nothing new repeats its last value (counted as a repeated frame); a
source silent for `stall_timeout_s` ends the episode: it is discarded, with the reason, and
nothing already saved is touched.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any

import numpy as np

from vla_common.errors import ConfigError
from vla_common.params import Param
from vla_teleop.dataset import DatasetError
from vla_teleop.dataset import DatasetSpec
from vla_teleop.dataset import LeRobotDatasetWriter

PARAMETERS = (
    Param('robot', 'so101', 'Robot config: joint order of state and action, cameras, fps.'),
    Param('dataset_dir', '', 'Dataset directory (created, or appended to); empty: data/<robot>.'),
    Param('cameras', [''], 'Cameras to record; [""]: every camera of the robot config.'),
    Param('width', 640, 'Image width the cameras publish.'),
    Param('height', 480, 'Image height the cameras publish.'),
    Param('stall_timeout_s', 1.0, 'A source silent this long mid-episode discards the episode.'),
)


@dataclass
class Source:
    """The newest value of one input and when it arrived."""

    value: Any = None
    arrival: float | None = None
    fresh: bool = False  # new since the last recorded frame

    def put(self, value: Any, now: float) -> None:
        self.value, self.arrival, self.fresh = value, now, True


@dataclass
class EpisodeCounters:
    frames: int = 0
    repeated: dict[str, int] = field(default_factory=dict)


class Recorder:
    def __init__(
        self,
        root: str | Path,
        robot_config: dict[str, Any],
        cameras: Sequence[str],
        image_size: tuple[int, int],
        stall_timeout_s: float,
    ):
        joints = list(robot_config.get('joints') or {})
        if not joints:
            raise ConfigError(f'{robot_config.get("_path", "robot config")}: no joints to record')
        fps = robot_config.get('fps', 30)
        if not isinstance(fps, int) or fps <= 0:
            raise ConfigError(f'robot config fps must be a positive integer, got {fps!r}')
        if not (math.isfinite(stall_timeout_s) and stall_timeout_s > 0):
            raise ConfigError('stall_timeout_s must be > 0')
        self.joints = tuple(joints)
        self.cameras = tuple(cameras)
        self.fps = fps
        self.stall_timeout_s = stall_timeout_s
        spec = DatasetSpec(
            fps=fps,
            state_names=self.joints,
            action_names=self.joints,
            cameras=dict.fromkeys(self.cameras, image_size),
            robot_type=robot_config.get('robot'),
        )
        self.writer = LeRobotDatasetWriter(root, spec)
        self.state, self.action = Source(), Source()
        self.images = {camera: Source() for camera in self.cameras}
        self.counters = EpisodeCounters()
        self.last_error = ''

    # --- inputs -----------------------------------------------------------------------------

    def _by_name(self, names: Sequence[str], values: Sequence[float]) -> np.ndarray | None:
        index = {name: i for i, name in enumerate(names)}
        if any(j not in index or index[j] >= len(values) for j in self.joints):
            return None
        vector = np.array([values[index[j]] for j in self.joints], dtype=np.float32)
        return vector if np.all(np.isfinite(vector)) else None

    def on_state(self, names: Sequence[str], positions: Sequence[float], now: float) -> bool:
        vector = self._by_name(names, positions)
        if vector is not None:
            self.state.put(vector, now)
        return vector is not None

    def on_action(self, names: Sequence[str], positions: Sequence[float], now: float) -> bool:
        """A joint_command; partial commands update only the joints they name."""
        index = {name: i for i, name in enumerate(names)}
        base = self.action.value if self.action.value is not None else self.state.value
        if base is None or any(n not in self.joints for n in names):
            return False
        vector = base.copy()
        for k, joint in enumerate(self.joints):
            if joint in index and index[joint] < len(positions):
                vector[k] = positions[index[joint]]
        if not np.all(np.isfinite(vector)):
            return False
        self.action.put(vector, now)
        return True

    def on_image(self, camera: str, rgb: np.ndarray, now: float) -> None:
        if camera in self.images:
            self.images[camera].put(rgb, now)

    # --- episodes ---------------------------------------------------------------------------

    def missing(self, now: float) -> list[str]:
        """The sources without a value newer than the stall timeout."""
        sources = {'joint_states': self.state, 'joint_command': self.action}
        sources.update({f'camera {c}': s for c, s in self.images.items()})
        return [
            name
            for name, s in sources.items()
            if s.arrival is None or now - s.arrival > self.stall_timeout_s
        ]

    def start(self, task: str, now: float) -> int:
        """Start an episode; raises DatasetError saying what is missing."""
        missing = self.missing(now)
        if missing:
            raise DatasetError(f'cannot start: no recent data from {", ".join(missing)}')
        episode = self.writer.start_episode(task)
        self.counters = EpisodeCounters(repeated=dict.fromkeys(self.cameras, 0))
        return episode

    def tick(self, now: float) -> str | None:
        """Record one frame; returns an error message when the episode had to be discarded."""
        if not self.writer.recording:
            return None
        missing = self.missing(now)
        if missing:
            self.writer.discard_episode()
            self.last_error = (
                f'episode discarded: no data from {", ".join(missing)} for more than '
                f'{self.stall_timeout_s:g} s'
            )
            return self.last_error
        for camera, source in self.images.items():
            if not source.fresh:
                self.counters.repeated[camera] += 1
            source.fresh = False
        images = {camera: source.value for camera, source in self.images.items()}
        self.writer.add_frame(self.state.value, self.action.value, images)
        self.counters.frames += 1
        return None

    def stop(self, keep: bool) -> tuple[int, int]:
        """End the episode; returns (episode index, frames). keep=False writes nothing."""
        episode = self.writer.total_episodes
        frames = self.counters.frames
        if keep:
            self.writer.save_episode()
        else:
            self.writer.discard_episode()
        return episode, frames
