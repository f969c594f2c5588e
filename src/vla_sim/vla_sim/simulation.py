"""A simulated robot with the interface of a real one.

Position targets in by joint name, joint states and camera images out, reset to a seeded task
scene. No ROS here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import mujoco
import numpy as np

from vla_common.errors import ConfigError
from vla_sim.config import SIMULATED_ROBOTS
from vla_sim.scene import so101_tabletop
from vla_sim.tasks import SO101_HOME
from vla_sim.tasks import TASKS
from vla_sim.tasks import Outcome


class CommandRejectedError(ValueError):
    """A joint command that must not reach the actuators; the message says why."""


class Simulation:
    def __init__(
        self,
        robot: str = 'so101',
        task: str = 'pick_cube',
        max_width: int = 640,
        max_height: int = 480,
    ):
        if robot not in SIMULATED_ROBOTS:
            available = ', '.join(SIMULATED_ROBOTS)
            raise ConfigError(f'no simulation of robot {robot!r}; available: {available}')
        self.model = so101_tabletop(max_width, max_height)
        self.data = mujoco.MjData(self.model)
        # Controlled joints: the actuated ones, in actuator order (= the robot config's order).
        self._joint_ids = [int(self.model.actuator_trnid[a, 0]) for a in range(self.model.nu)]
        self.joint_names = tuple(self.model.joint(j).name for j in self._joint_ids)
        self._qpos_adr = self.model.jnt_qposadr[self._joint_ids]
        self._dof_adr = self.model.jnt_dofadr[self._joint_ids]
        self.lower = self.model.actuator_ctrlrange[:, 0].copy()
        self.upper = self.model.actuator_ctrlrange[:, 1].copy()
        self.task = self._make_task(task)
        self.seed = 0
        self.instruction = ''

    def _make_task(self, name: str):
        if name not in TASKS:
            raise ConfigError(f'unknown task {name!r}; available: {", ".join(TASKS)}')
        return TASKS[name](self.model)

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
        self.data.ctrl[ids] = np.clip(targets, self.lower[ids], self.upper[ids])

    def joint_state(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Positions, velocities and actuator forces of the controlled joints."""
        return (
            self.data.qpos[self._qpos_adr].copy(),
            self.data.qvel[self._dof_adr].copy(),
            self.data.actuator_force.copy(),
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
            self.task = self._make_task(task)
        mujoco.mj_resetData(self.model, self.data)
        self.data.qpos[self._qpos_adr] = SO101_HOME
        self.data.ctrl[:] = SO101_HOME
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
