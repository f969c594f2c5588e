"""Tasks: seeded random initial scenes, the instruction, and success judged from physics.

Success is read from the final physical state (a cube's height over time), never from
contact flags, which report a touch as a grasp.
"""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np

from vla_sim.scene import CUBE_COLOURS
from vla_sim.scene import CUBE_HALF

# Arm pose at reset (radians, robot joint order): raised, gripper open above the table.
SO101_HOME = (0.0, -1.0, 1.0, 0.5, 0.0, 0.6)


@dataclass(frozen=True)
class Outcome:
    success: bool
    wrong_object: bool
    lifted: tuple[str, ...]  # the cubes lifted and held now


class PickCubeTask:
    """Pick up the <colour> cube: success when that cube is lifted > 5 cm and held.

    A cube counts as lifted and held once its centre has been more than `lift_m` above its
    resting height for `hold_s` without a break. Lifting another cube sets `wrong_object`.
    """

    name = 'pick_cube'
    lift_m = 0.05
    hold_s = 0.5
    workspace_x = (0.17, 0.30)
    workspace_y = (-0.12, 0.12)
    min_separation = 0.06

    def __init__(self, model: mujoco.MjModel):
        self._cubes = list(CUBE_COLOURS)
        self._qpos = {c: model.jnt_qposadr[model.joint(f'cube_{c}').id] for c in self._cubes}
        self._dof = {c: model.jnt_dofadr[model.joint(f'cube_{c}').id] for c in self._cubes}
        self.target = self._cubes[0]
        self._above_since: dict[str, float | None] = dict.fromkeys(self._cubes)
        self._wrong = False

    def reset(self, data: mujoco.MjData, rng: np.random.Generator) -> str:
        """Place the cubes (random, non-overlapping, random yaw), pick a target colour."""
        placed: list[np.ndarray] = []
        while len(placed) < len(self._cubes):
            xy = np.array([rng.uniform(*self.workspace_x), rng.uniform(*self.workspace_y)])
            if all(np.linalg.norm(xy - other) >= self.min_separation for other in placed):
                placed.append(xy)
        for colour, xy in zip(self._cubes, placed, strict=True):
            yaw = rng.uniform(-np.pi, np.pi)
            adr = self._qpos[colour]
            data.qpos[adr : adr + 3] = [xy[0], xy[1], CUBE_HALF]
            data.qpos[adr + 3 : adr + 7] = [np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2)]
            data.qvel[self._dof[colour] : self._dof[colour] + 6] = 0.0
        self.target = self._cubes[int(rng.integers(len(self._cubes)))]
        self._above_since = dict.fromkeys(self._cubes)
        self._wrong = False
        return self.instruction

    @property
    def instruction(self) -> str:
        return f'pick up the {self.target} cube'

    def cube_position(self, data: mujoco.MjData, colour: str) -> np.ndarray:
        adr = self._qpos[colour]
        return data.qpos[adr : adr + 3].copy()

    def update(self, data: mujoco.MjData) -> Outcome:
        """Track each cube's height; call after every step (uses data.time)."""
        held = []
        for colour in self._cubes:
            height = data.qpos[self._qpos[colour] + 2] - CUBE_HALF
            if height > self.lift_m:
                if self._above_since[colour] is None:
                    self._above_since[colour] = data.time
                if data.time - self._above_since[colour] >= self.hold_s:
                    held.append(colour)
            else:
                self._above_since[colour] = None
        self._wrong = self._wrong or any(colour != self.target for colour in held)
        return Outcome(self.target in held, self._wrong, tuple(held))


TASKS = {PickCubeTask.name: PickCubeTask}
