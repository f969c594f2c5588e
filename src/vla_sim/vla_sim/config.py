"""Parameters of the sim node, declared once (defaults here; config files only override)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from vla_common.errors import ConfigError
from vla_common.params import Param

# Robots with a simulation (the SO-100 uses the SO-101 model: same kinematics and servos),
# each with its tasks; the first is the default. Every task has a scripted expert.
ROBOT_TASKS = {
    'so101': ('pick_cube',),
    'so100': ('pick_cube',),
    'aloha': ('transfer_cube', 'insertion'),
}
SIMULATED_ROBOTS = tuple(ROBOT_TASKS)

PARAMETERS = (
    Param('robot', 'so101', 'Simulated robot: so101, so100 (same model) or aloha.'),
    Param('task', '', "Task at start and for sim/reset without one; empty: the robot's own."),
    Param('seed', 0, 'Seed of the first scene.'),
    Param('cameras', ['front'], 'MJCF cameras published as camera/<name>/image_raw.'),
    Param('camera_fps', 30.0, 'Image rate per camera, in simulated time.'),
    Param('width', 640, 'Image width in pixels.'),
    Param('height', 480, 'Image height in pixels.'),
    Param('state_rate_hz', 100.0, 'joint_states rate, in simulated time (>= 100 Hz).'),
    Param(
        'realtime',
        True,
        'Pace to the wall clock (real-time factor 1); false: as fast as possible.',
    ),
    Param('publish_clock', False, 'Publish simulated time on /clock (for use_sim_time nodes).'),
    Param('expert', False, 'Publish a scripted expert on leader/joint_states after each reset.'),
    Param('expert_rate_hz', 50.0, 'leader/joint_states rate of the expert, in simulated time.'),
    Param(
        'expert_delay_s',
        1.0,
        'Simulated seconds the expert holds its start pose once the follower listens, so a '
        'recording started just after a reset begins at rest, where a policy starts.',
    ),
)


@dataclass(frozen=True)
class SimConfig:
    robot: str = 'so101'
    task: str = ''
    seed: int = 0
    cameras: tuple[str, ...] = ('front',)
    camera_fps: float = 30.0
    width: int = 640
    height: int = 480
    state_rate_hz: float = 100.0
    realtime: bool = True
    publish_clock: bool = False
    expert: bool = False
    expert_rate_hz: float = 50.0
    expert_delay_s: float = 1.0

    def __post_init__(self) -> None:
        object.__setattr__(self, 'cameras', tuple(self.cameras))
        if self.seed < 0:
            raise ConfigError(f'seed must be >= 0, got {self.seed}')
        if not (math.isfinite(self.camera_fps) and 0 < self.camera_fps <= 120):
            raise ConfigError(f'camera_fps must be in (0, 120], got {self.camera_fps}')
        if not (math.isfinite(self.state_rate_hz) and 100 <= self.state_rate_hz <= 1000):
            raise ConfigError(f'state_rate_hz must be in [100, 1000], got {self.state_rate_hz}')
        if not (math.isfinite(self.expert_rate_hz) and 1 <= self.expert_rate_hz <= 200):
            raise ConfigError(f'expert_rate_hz must be in [1, 200], got {self.expert_rate_hz}')
        if not (math.isfinite(self.expert_delay_s) and 0 <= self.expert_delay_s <= 10):
            raise ConfigError(f'expert_delay_s must be in [0, 10], got {self.expert_delay_s}')
        if not (0 < self.width <= 4096 and 0 < self.height <= 4096):
            raise ConfigError(
                f'width and height must be in 1..4096, got {self.width}x{self.height}'
            )

    @classmethod
    def from_params(cls, values: dict[str, Any]) -> SimConfig:
        return cls(**values)
