"""A simulated robot with the interface of a real one.

Position targets in by joint name, joint states and camera images out, reset to a seeded task
scene. No ROS here.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from collections.abc import Sequence
from dataclasses import dataclass

import mujoco
import numpy as np

from vla_common.errors import ConfigError
from vla_sim.config import ROBOT_TASKS
from vla_sim.config import SIMULATED_ROBOTS
from vla_sim.scene import ALOHA_ARM
from vla_sim.scene import aloha_insertion
from vla_sim.scene import aloha_transfer_cube
from vla_sim.scene import so101_tabletop
from vla_sim.tasks import SO101_HOME
from vla_sim.tasks import TASKS
from vla_sim.tasks import Outcome


class CommandRejectedError(ValueError):
    """A joint command that must not reach the actuators; the message says why."""


@dataclass(frozen=True)
class RobotModel:
    """How a robot config's joints drive a MuJoCo model.

    `joints`: robot joint name -> (MJCF joint, sign) pairs; each pair's position actuator gets
    sign * target, and the first pair's joint is the one reported in joint_states (ALOHA's
    one gripper value drives two finger slides).
    """

    joints: tuple[tuple[str, tuple[tuple[str, float], ...]], ...]
    home: tuple[float, ...]


def _aloha_joints() -> tuple[tuple[str, tuple[tuple[str, float], ...]], ...]:
    joints = []
    for side in ('left', 'right'):
        joints += [(f'{side}_{j}', ((f'vx300s_{side}/{j}', 1.0),)) for j in ALOHA_ARM]
        fingers = ((f'vx300s_{side}/left_finger', 1.0), (f'vx300s_{side}/right_finger', -1.0))
        joints.append((f'{side}_gripper', fingers))
    return tuple(joints)


SO101_JOINTS = (
    'shoulder_pan',
    'shoulder_lift',
    'elbow_flex',
    'wrist_flex',
    'wrist_roll',
    'gripper',
)
ROBOT_MODELS = {
    'so101': RobotModel(tuple((j, ((j, 1.0),)) for j in SO101_JOINTS), SO101_HOME),
    'aloha': RobotModel(_aloha_joints(), (0.0, -0.96, 1.16, 0.0, -0.3, 0.0, 0.024) * 2),
}
ROBOT_MODELS['so100'] = ROBOT_MODELS['so101']  # same kinematics and servos
# The scene each task is played in: a function of (max_width, max_height) -> model.
SCENES: dict[str, Callable[[int, int], mujoco.MjModel]] = {
    'pick_cube': so101_tabletop,
    'transfer_cube': aloha_transfer_cube,
    'insertion': aloha_insertion,
}


class Simulation:
    def __init__(
        self,
        robot: str = 'so101',
        task: str | None = None,
        max_width: int = 640,
        max_height: int = 480,
    ):
        if robot not in SIMULATED_ROBOTS:
            available = ', '.join(SIMULATED_ROBOTS)
            raise ConfigError(f'no simulation of robot {robot!r}; available: {available}')
        description = ROBOT_MODELS[robot]
        self.robot = robot
        self.tasks = ROBOT_TASKS[robot]
        task = task or self.tasks[0]
        self._check_task(task)
        self.model = SCENES[task](max_width, max_height)
        self.data = mujoco.MjData(self.model)
        self.home = np.array(description.home)
        actuator_of = {int(self.model.actuator_trnid[a, 0]): a for a in range(self.model.nu)}
        self.joint_names = tuple(name for name, _ in description.joints)
        self._drives = []  # per robot joint: [(actuator, qpos address, sign), ...]
        for _, pairs in description.joints:
            drives = []
            for joint, sign in pairs:
                joint_id = self.model.joint(joint).id
                drives.append((actuator_of[joint_id], self.model.jnt_qposadr[joint_id], sign))
            self._drives.append(drives)
        first = [drives[0] for drives in self._drives]
        self._actuators = np.array([actuator for actuator, _, _ in first])
        self._qpos_adr = np.array([adr for _, adr, _ in first])
        self._dof_adr = np.array(
            [self.model.jnt_dofadr[int(self.model.actuator_trnid[a, 0])] for a in self._actuators]
        )
        # Position servo gains (force per rad or m of error), per robot joint.
        self.position_gains = self.model.actuator_gainprm[self._actuators, 0].copy()
        self.lower = self.model.actuator_ctrlrange[self._actuators, 0].copy()
        self.upper = self.model.actuator_ctrlrange[self._actuators, 1].copy()
        self.task = TASKS[task](self.model)
        self.seed = 0
        self.instruction = ''

    def _check_task(self, task: str) -> None:
        if task not in self.tasks:
            raise ConfigError(f'unknown task {task!r}; available: {", ".join(self.tasks)}')

    # --- robot interface ----------------------------------------------------------------------

    def command(self, names: Sequence[str], positions: Sequence[float]) -> None:
        """Set position targets by joint name; the whole command is rejected if any is bad."""
        if len(names) != len(positions):
            raise CommandRejectedError(f'{len(names)} names but {len(positions)} positions')
        index = {name: i for i, name in enumerate(self.joint_names)}
        unknown = [n for n in names if n not in index]
        if unknown:
            raise CommandRejectedError(
                f'unknown joints {unknown}; known: {list(self.joint_names)}'
            )
        targets = np.asarray(positions, dtype=float)
        if not np.all(np.isfinite(targets)):
            raise CommandRejectedError('positions contain NaN or inf')
        ids = [index[n] for n in names]
        tolerance = 1e-6
        outside = [
            names[k]
            for k, i in enumerate(ids)
            if not self.lower[i] - tolerance <= targets[k] <= self.upper[i] + tolerance
        ]
        if outside:
            raise CommandRejectedError(f'targets outside the joint range for {outside}')
        for i, target in zip(ids, np.clip(targets, self.lower[ids], self.upper[ids]), strict=True):
            for actuator, _, sign in self._drives[i]:
                self.data.ctrl[actuator] = sign * target

    def joint_state(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Positions, velocities and actuator forces of the controlled joints."""
        return (
            self.data.qpos[self._qpos_adr].copy(),
            self.data.qvel[self._dof_adr].copy(),
            self.data.actuator_force[self._actuators].copy(),
        )

    def step(self, seconds: float) -> Outcome:
        """Advance physics by `seconds` (whole timesteps) and return the task's outcome."""
        steps = max(1, round(seconds / self.model.opt.timestep))
        outcome = None
        for _ in range(steps):
            mujoco.mj_step(self.model, self.data)
            outcome = self.task.update(self.data)
        return outcome

    @property
    def time(self) -> float:
        return float(self.data.time)

    def reset(self, seed: int, task: str | None = None) -> str:
        """A new scene from `seed` (same seed, same scene); returns the instruction."""
        if seed < 0:
            raise ConfigError(f'seed must be >= 0, got {seed}')
        if task and task != self.task.name:
            self._check_task(task)
            if SCENES[task] is not SCENES[self.task.name]:
                raise ConfigError(
                    f'task {task!r} has its own scene: start the simulation with task:={task}'
                )
            self.task = TASKS[task](self.model)
        mujoco.mj_resetData(self.model, self.data)
        for drives, home in zip(self._drives, self.home, strict=True):
            for actuator, adr, sign in drives:
                self.data.qpos[adr] = sign * home
                self.data.ctrl[actuator] = sign * home
        self.seed = seed
        self.instruction = self.task.reset(self.data, np.random.default_rng(seed))
        mujoco.mj_forward(self.model, self.data)
        return self.instruction

    def camera_fovy(self, camera: str) -> float:
        return float(self.model.cam_fovy[self.model.camera(camera).id])


def intrinsics(fovy_deg: float, width: int, height: int) -> tuple[float, float, float, float]:
    """Pinhole fx, fy, cx, cy of a MuJoCo camera (fovy is vertical; square pixels)."""
    fy = (height / 2.0) / math.tan(math.radians(fovy_deg) / 2.0)
    return fy, fy, (width - 1) / 2.0, (height - 1) / 2.0
