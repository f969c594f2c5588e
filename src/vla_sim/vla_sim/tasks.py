"""Tasks: seeded random initial scenes, the instruction, and success judged from physics.

Success is read from the final physical state (a cube's height over time), never from
contact flags, which report a touch as a grasp.
"""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np

from vla_sim.scene import BOX_HALF
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


class TransferCubeTask:
    """ALOHA: the right arm picks the box and hands it to the left arm.

    Success: the box is off the table (centre > 5 cm up), between the left gripper's fingers
    (within 5 cm of the centre of its finger geoms) and away from the right gripper (more than
    7 cm), held so for `hold_s`. Judged from positions only, never from contact flags.
    """

    name = 'transfer_cube'
    instruction = 'transfer the cube to the left arm'
    hold_s = 0.5
    box_x = (0.0, 0.2)  # gym-aloha's sampling region, in reach of the right arm
    box_y = (0.4, 0.6)

    def __init__(self, model: mujoco.MjModel):
        self._model = model
        self._qpos = model.jnt_qposadr[model.joint('red_box_joint').id]
        self._dof = model.jnt_dofadr[model.joint('red_box_joint').id]
        # The finger geoms (their centres sit between the pads), per gripper.
        self._fingers = {
            side: [
                model.geom(f'vx300s_{side}/10_{f}_gripper_finger').id for f in ('left', 'right')
            ]
            for side in ('left', 'right')
        }
        self._table_top = 0.0
        self._held_since: float | None = None
        self.target = 'box'

    def reset(self, data: mujoco.MjData, rng: np.random.Generator) -> str:
        x, y = rng.uniform(*self.box_x), rng.uniform(*self.box_y)
        data.qpos[self._qpos : self._qpos + 7] = [x, y, BOX_HALF, 1.0, 0.0, 0.0, 0.0]
        data.qvel[self._dof : self._dof + 6] = 0.0
        self._held_since = None
        return self.instruction

    def box_position(self, data: mujoco.MjData) -> np.ndarray:
        return data.qpos[self._qpos : self._qpos + 3].copy()

    def _between_fingers(self, data: mujoco.MjData, side: str) -> float:
        midpoint = data.geom_xpos[self._fingers[side]].mean(axis=0)
        return float(np.linalg.norm(self.box_position(data) - midpoint))

    def update(self, data: mujoco.MjData) -> Outcome:
        box = self.box_position(data)
        held = (
            box[2] - BOX_HALF > 0.05
            and self._between_fingers(data, 'left') < 0.05
            and self._between_fingers(data, 'right') > 0.07
        )
        if not held:
            self._held_since = None
        elif self._held_since is None:
            self._held_since = data.time
        success = held and data.time - self._held_since >= self.hold_s
        return Outcome(success, False, ('box',) if success else ())


TASKS = {PickCubeTask.name: PickCubeTask, TransferCubeTask.name: TransferCubeTask}
