"""Recorder core: samples state, action and images on a fixed clock into a dataset.

No rclpy; time is passed in. Every message is kept for a moment with its capture stamp; a tick
at wall time t records sample time T = t - `latency_s` and takes, from every source, the value
captured nearest to T. Sampling a little in the past lets late frames arrive, so transport
jitter does not turn into repeated or skipped frames. A camera whose nearest frame is the one
already recorded counts a repeated frame; a source with nothing within `stall_timeout_s` of T
ends the episode: it is discarded, with the reason, and nothing already saved is touched.
"""

from __future__ import annotations

import math
import shutil
from collections import deque
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
    Param('width', 0, "Image width of every camera; 0: each camera's from the robot config."),
    Param('height', 0, "Image height of every camera; 0: each camera's from the robot config."),
    Param('stall_timeout_s', 1.0, 'A source silent this long mid-episode discards the episode.'),
    Param('latency_s', 0.1, 'Record this far in the past, so that late messages still count.'),
    Param(
        'min_free_mb',
        50.0,
        "start_episode refuses with less free space than this on the dataset's disk.",
    ),
)


class Source:
    """The recent values of one input with their capture stamps (the last `keep_s` seconds)."""

    def __init__(self, keep_s: float):
        self._keep_s = keep_s
        self._items: deque[tuple[float, Any]] = deque()

    def put(self, value: Any, stamp: float) -> None:
        if self._items and stamp < self._items[-1][0] - self._keep_s:
            self._items.clear()  # time jumped back (a restarted sim clock): start over
        self._items.append((stamp, value))
        if len(self._items) > 1 and stamp < self._items[-2][0]:  # arrived out of order
            self._items = deque(sorted(self._items, key=lambda item: item[0]))
        while self._items and stamp - self._items[0][0] > self._keep_s:
            self._items.popleft()

    @property
    def latest(self) -> tuple[float, Any] | None:
        return self._items[-1] if self._items else None

    def nearest(self, t: float) -> tuple[float, Any] | None:
        """The (stamp, value) captured nearest to `t`."""
        if not self._items:
            return None
        return min(self._items, key=lambda item: abs(item[0] - t))


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
        image_sizes: dict[str, tuple[int, int]],
        stall_timeout_s: float,
        latency_s: float = 0.1,
        min_free_mb: float = 0.0,
    ):
        joints = list(robot_config.get('joints') or {})
        if not joints:
            raise ConfigError(f'{robot_config.get("_path", "robot config")}: no joints to record')
        fps = robot_config.get('fps', 30)
        if not isinstance(fps, int) or fps <= 0:
            raise ConfigError(f'robot config fps must be a positive integer, got {fps!r}')
        if not (math.isfinite(stall_timeout_s) and stall_timeout_s > 0):
            raise ConfigError('stall_timeout_s must be > 0')
        if not (math.isfinite(latency_s) and 0 <= latency_s < stall_timeout_s):
            raise ConfigError('latency_s must be >= 0 and below stall_timeout_s')
        if not (math.isfinite(min_free_mb) and min_free_mb >= 0):
            raise ConfigError('min_free_mb must be >= 0')
        self.latency_s = latency_s
        self.min_free_mb = min_free_mb
        self.joints = tuple(joints)
        self.cameras = tuple(cameras)
        self.fps = fps
        self.stall_timeout_s = stall_timeout_s
        spec = DatasetSpec(
            fps=fps,
            state_names=self.joints,
            action_names=self.joints,
            cameras={camera: image_sizes[camera] for camera in self.cameras},
            robot_type=robot_config.get('robot'),
        )
        self.writer = LeRobotDatasetWriter(root, spec)
        keep = latency_s + 0.5
        self.state, self.action = Source(keep), Source(keep)
        self.images = {camera: Source(keep) for camera in self.cameras}
        self._recorded: dict[str, float] = {}  # stamp of the image recorded last, per camera
        self.counters = EpisodeCounters()
        self.last_error = ''

    # --- inputs -----------------------------------------------------------------------------

    def _by_name(self, names: Sequence[str], values: Sequence[float]) -> np.ndarray | None:
        index = {name: i for i, name in enumerate(names)}
        if any(j not in index or index[j] >= len(values) for j in self.joints):
            return None
        vector = np.array([values[index[j]] for j in self.joints], dtype=np.float32)
        return vector if np.all(np.isfinite(vector)) else None

    def on_state(self, names: Sequence[str], positions: Sequence[float], stamp: float) -> bool:
        vector = self._by_name(names, positions)
        if vector is not None:
            self.state.put(vector, stamp)
        return vector is not None

    def on_action(self, names: Sequence[str], positions: Sequence[float], stamp: float) -> bool:
        """A joint_command; partial commands update only the joints they name."""
        index = {name: i for i, name in enumerate(names)}
        previous = self.action.latest or self.state.latest
        if previous is None:  # joints not named keep their last value: start from somewhere
            return False
        base = previous[1]
        vector = base.copy()
        for k, joint in enumerate(self.joints):
            if joint in index and index[joint] < len(positions):
                vector[k] = positions[index[joint]]
        if not np.all(np.isfinite(vector)):
            return False
        self.action.put(vector, stamp)
        return True

    def on_image(self, camera: str, rgb: np.ndarray, stamp: float) -> None:
        if camera in self.images:
            self.images[camera].put(rgb, stamp)

    # --- episodes ---------------------------------------------------------------------------

    def _sources(self) -> dict[str, Source]:
        sources = {'joint_states': self.state, 'joint_command': self.action}
        sources.update({f'camera {c}': s for c, s in self.images.items()})
        return sources

    def missing(self, now: float) -> list[str]:
        """The sources with nothing captured within the stall timeout of the sample time."""
        t = now - self.latency_s
        missing = []
        for name, source in self._sources().items():
            item = source.nearest(t)
            if item is None or abs(item[0] - t) > self.stall_timeout_s:
                missing.append(name)
        return missing

    def free_mb(self) -> float:
        """Free space on the dataset's disk, in MB (NaN if it cannot be told)."""
        try:
            return shutil.disk_usage(self.writer.root).free / 1e6
        except OSError:
            return math.nan

    def disk_problem(self) -> str:
        """Why the disk cannot take another episode ('' if it can)."""
        free = self.free_mb()
        if free < self.min_free_mb:
            return (
                f'disk full: {free:.1f} MB free in {self.writer.root} (min_free_mb '
                f'{self.min_free_mb:g}); free some space or record into another dataset_dir'
            )
        return ''

    def start(self, task: str, now: float) -> int:
        """Start an episode; raises DatasetError saying what is missing."""
        missing = self.missing(now)
        if missing:
            raise DatasetError(f'cannot start: no recent data from {", ".join(missing)}')
        disk = self.disk_problem()
        if disk:
            raise DatasetError(f'cannot start: {disk}')
        episode = self.writer.start_episode(task)
        self.last_error = ''
        self.counters = EpisodeCounters(repeated=dict.fromkeys(self.cameras, 0))
        self._recorded = {}
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
        t = now - self.latency_s
        images = {}
        for camera, source in self.images.items():
            stamp, images[camera] = source.nearest(t)
            if self._recorded.get(camera) == stamp:
                self.counters.repeated[camera] += 1
            self._recorded[camera] = stamp
        self.writer.add_frame(self.state.nearest(t)[1], self.action.nearest(t)[1], images)
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
