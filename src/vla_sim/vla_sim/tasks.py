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
from vla_sim.scene import PEG_HALF
from vla_sim.scene import SOCKET_HALF
from vla_sim.scene import SOCKET_INNER_HALF

# Arm pose at reset (radians, robot joint order): raised, gripper open above the table.
SO101_HOME = (0.0, -1.0, 1.0, 0.5, 0.0, 0.6)


@dataclass(frozen=True)
class Outcome:
    success: bool
    wrong_object: bool
    lifted: tuple[str, ...]  # the cubes lifted and held now


class FreeObject:
    """A body on a free joint: its pose in qpos, placed flat on the table at reset."""

    def __init__(self, model: mujoco.MjModel, joint: str, half_height: float):
        self._qpos = model.jnt_qposadr[model.joint(joint).id]
        self._dof = model.jnt_dofadr[model.joint(joint).id]
        self.half_height = half_height

    def place(self, data: mujoco.MjData, x: float, y: float) -> None:
        data.qpos[self._qpos : self._qpos + 7] = [x, y, self.half_height, 1.0, 0.0, 0.0, 0.0]
        data.qvel[self._dof : self._dof + 6] = 0.0

    def position(self, data: mujoco.MjData) -> np.ndarray:
        return data.qpos[self._qpos : self._qpos + 3].copy()

    def rotation(self, data: mujoco.MjData) -> np.ndarray:
        rotation = np.zeros(9)
        mujoco.mju_quat2Mat(rotation, data.qpos[self._qpos + 3 : self._qpos + 7])
        return rotation.reshape(3, 3)

    def height(self, data: mujoco.MjData) -> float:
        """How far it is above its resting height on the table (m)."""
        return float(data.qpos[self._qpos + 2]) - self.half_height


class Hold:
    """How long a condition has been true without a break, in simulated time."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self._since: float | None = None

    def reset(self) -> None:
        self._since = None

    def update(self, condition: bool, now: float) -> bool:
        """Record the condition at `now`; True once it has held for `seconds`."""
        if not condition:
            self._since = None
            return False
        if self._since is None:
            self._since = now
        return now - self._since >= self.seconds


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
        self._lifted = {c: Hold(self.hold_s) for c in self._cubes}
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
        for hold in self._lifted.values():
            hold.reset()
        self._wrong = False
        return self.instruction

    @property
    def instruction(self) -> str:
        return f'pick up the {self.target} cube'

    @property
    def choices(self) -> list[str]:
        """The objects an instruction can name (set `target` to one to ask for it)."""
        return list(self._cubes)

    def cube_position(self, data: mujoco.MjData, colour: str) -> np.ndarray:
        adr = self._qpos[colour]
        return data.qpos[adr : adr + 3].copy()

    def update(self, data: mujoco.MjData) -> Outcome:
        """Track each cube's height; call after every step (uses data.time)."""
        held = [
            colour
            for colour in self._cubes
            if self._lifted[colour].update(
                data.qpos[self._qpos[colour] + 2] - CUBE_HALF > self.lift_m, data.time
            )
        ]
        self._wrong = self._wrong or any(colour != self.target for colour in held)
        return Outcome(self.target in held, self._wrong, tuple(held))


class TransferCubeTask:
    """ALOHA: the right arm picks the box and hands it to the left arm.

    Success: the box is off the table (centre > 5 cm up), at the left gripper's pinch point
    (between its finger pads: centre within 3 cm) and away from the right one (more than 7 cm),
    held so for `hold_s`. Judged from positions only, never from contact flags.
    """

    name = 'transfer_cube'
    instruction = 'transfer the cube to the left arm'
    hold_s = 0.5
    box_x = (0.0, 0.2)  # gym-aloha's sampling region, in reach of the right arm
    box_y = (0.4, 0.6)

    def __init__(self, model: mujoco.MjModel):
        self.box = FreeObject(model, 'red_box_joint', BOX_HALF)
        self._pinch = {side: model.site(f'vx300s_{side}/pinch').id for side in ('left', 'right')}
        self._held = Hold(self.hold_s)
        self.target = 'box'

    def reset(self, data: mujoco.MjData, rng: np.random.Generator) -> str:
        self.box.place(data, rng.uniform(*self.box_x), rng.uniform(*self.box_y))
        self._held.reset()
        return self.instruction

    def box_position(self, data: mujoco.MjData) -> np.ndarray:
        return self.box.position(data)

    def from_pinch(self, data: mujoco.MjData, side: str) -> float:
        """Distance (m) from the box's centre to the `side` gripper's pinch point."""
        return float(np.linalg.norm(self.box.position(data) - data.site_xpos[self._pinch[side]]))

    def update(self, data: mujoco.MjData) -> Outcome:
        held = (
            self.box.height(data) > 0.05
            and self.from_pinch(data, 'left') < 0.03
            and self.from_pinch(data, 'right') > 0.07
        )
        success = self._held.update(held, data.time)
        return Outcome(success, False, ('box',) if success else ())


class InsertionTask:
    """ALOHA: the left arm picks the socket, the right arm the peg, and they insert it in the air.

    Success: an end of the peg is inside the socket's tube (within its 3.6 cm square, at least
    1 cm past the opening: at 2 cm it meets the pin), both objects off the table (more than
    5 cm up), held so for `hold_s`. Judged from positions only, never from contact flags.
    """

    name = 'insertion'
    instruction = 'insert the peg into the socket'
    hold_s = 0.5
    depth_m = 0.01
    lift_m = 0.05
    peg_x, socket_x, y = (0.1, 0.2), (-0.2, -0.1), (0.4, 0.6)  # gym-aloha's regions

    def __init__(self, model: mujoco.MjModel):
        self.peg = FreeObject(model, 'red_peg_joint', PEG_HALF[2])
        self.socket = FreeObject(model, 'blue_socket_joint', SOCKET_HALF[2])
        self._held = Hold(self.hold_s)
        self.target = 'peg'

    def reset(self, data: mujoco.MjData, rng: np.random.Generator) -> str:
        self.peg.place(data, rng.uniform(*self.peg_x), rng.uniform(*self.y))
        self.socket.place(data, rng.uniform(*self.socket_x), rng.uniform(*self.y))
        self._held.reset()
        return self.instruction

    def peg_ends_in_socket(self, data: mujoco.MjData) -> np.ndarray:
        """The peg's two end points in the socket's frame (x along the tube), shape (2, 3)."""
        axis = self.peg.rotation(data)[:, 0] * PEG_HALF[0]
        ends = self.peg.position(data) + np.array([axis, -axis])
        return (ends - self.socket.position(data)) @ self.socket.rotation(data)

    def update(self, data: mujoco.MjData) -> Outcome:
        inserted = any(
            abs(y) < SOCKET_INNER_HALF
            and abs(z) < SOCKET_INNER_HALF
            and abs(x) <= SOCKET_HALF[0] - self.depth_m
            for x, y, z in self.peg_ends_in_socket(data)
        )
        lifted = min(self.peg.height(data), self.socket.height(data)) > self.lift_m
        success = self._held.update(inserted and lifted, data.time)
        return Outcome(success, False, ('peg', 'socket') if success else ())


TASKS = {task.name: task for task in (PickCubeTask, TransferCubeTask, InsertionTask)}
