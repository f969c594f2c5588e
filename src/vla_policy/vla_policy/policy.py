"""The policy node's core, without ROS.

Its parameters, the latest-observation buffer with staleness checks, and the alignment of the
previous chunk for real-time chunking.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from dataclasses import field

import numpy as np

from vla_common.params import Param
from vla_policy.inference import ObservationError

PARAMETERS = [
    Param('robot', 'so101', 'Robot config (config/robots/<robot>.yaml) the policy drives.'),
    Param('checkpoint', '', 'Checkpoint directory; empty: an untrained model of `preset`.'),
    Param('preset', 'tiny', 'Architecture of the untrained model used without a checkpoint.'),
    Param('device', 'auto', 'cpu, cuda, cuda:N, or auto (cuda when available).'),
    Param('threads', 0, 'torch CPU threads (0: torch default).'),
    Param('seed', 0, 'Seed of the flow-matching noise.'),
    Param('replan_period_s', 0.5, 'Time between chunks (clock time: sim time with use_sim_time).'),
    Param('max_image_age_s', 0.5, 'Refuse to infer on an image older than this.'),
    Param('max_state_age_s', 0.25, 'Refuse to infer on joint_states older than this.'),
    Param('guidance', True, 'Real-time chunking: steer each chunk toward the previous one.'),
    Param('run_timeout_s', 60.0, 'Default timeout of a vla/run_instruction goal.'),
]

COLOUR_ENCODINGS = ('rgb8', 'bgr8', 'rgba8', 'bgra8')


@dataclass
class Snapshot:
    images: dict[str, np.ndarray]
    state: np.ndarray
    stamp: float
    """Capture time of the joint state: the chunk's time origin (design §4)."""
    instruction: str


@dataclass
class ObservationBuffer:
    """The latest image per camera, the latest joint state and the instruction.

    Written by subscription callbacks, read by the inference thread; a snapshot either has
    everything fresh or raises ObservationError saying what is missing or stale.
    """

    cameras: list[str]
    joint_names: list[str]
    max_image_age_s: float
    max_state_age_s: float
    instruction: str = ''
    _images: dict[str, tuple[np.ndarray, float]] = field(default_factory=dict)
    _state: tuple[np.ndarray, float] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def on_image(self, camera: str, rgb: np.ndarray, stamp: float) -> None:
        with self._lock:
            self._images[camera] = (rgb, stamp)

    def on_state(self, names: list[str], positions: list[float], stamp: float) -> None:
        """Keep the policy's joints by name; raises ObservationError if some are missing."""
        index = {n: i for i, n in enumerate(names)}
        missing = [j for j in self.joint_names if j not in index]
        if missing or len(positions) != len(names):
            what = (
                f'lacks {", ".join(missing)}'
                if missing
                else 'has names/positions of unequal length'
            )
            raise ObservationError(f'joint_states {what}')
        state = np.array([positions[index[j]] for j in self.joint_names], dtype=np.float64)
        with self._lock:
            self._state = (state, stamp)

    def snapshot(self, now: float) -> Snapshot:
        problems = []
        with self._lock:
            images = dict(self._images)
            state = self._state
        if not self.instruction.strip():
            problems.append('no instruction (publish vla/instruction or send vla/run_instruction)')
        for camera in self.cameras:
            if camera not in images:
                problems.append(f'no image from camera {camera} yet')
            elif now - images[camera][1] > self.max_image_age_s:
                age = now - images[camera][1]
                problems.append(
                    f'camera {camera} image is {age:.2f} s old (limit {self.max_image_age_s} s)'
                )
        if state is None:
            problems.append('no joint_states yet')
        elif now - state[1] > self.max_state_age_s:
            problems.append(
                f'joint_states are {now - state[1]:.2f} s old (limit {self.max_state_age_s} s)'
            )
        if problems:
            raise ObservationError('; '.join(problems))
        return Snapshot(
            images={c: images[c][0] for c in self.cameras},
            state=state[0],
            stamp=state[1],
            instruction=self.instruction,
        )


def align_previous(actions: np.ndarray, stamp: float, step: float, new_stamp: float) -> np.ndarray:
    """The previous chunk's actions for the new chunk's times, in order (maybe none).

    Action i of a chunk stamped s is meant for s + (i + 1) * step, so the new chunk's action i
    is the previous chunk's action i + (new_stamp - stamp) / step.
    """
    offset = round((new_stamp - stamp) / step)
    if offset < 0:
        return actions[:0]
    return actions[offset:]


def delay_steps(latency_s: float, step: float) -> int:
    """Actions that execute while a model call of `latency_s` runs."""
    return max(0, math.ceil(latency_s / step))
