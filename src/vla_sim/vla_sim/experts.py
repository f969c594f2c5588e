"""Scripted experts: joint targets from end-effector waypoints, like a person at the leader arm.

Inverse kinematics is damped least squares on MuJoCo's site Jacobians, solved on a private
copy of the state so the physics is never touched. The expert reads the scene (cube poses)
from the simulator: it is a demonstrator, not a policy.
"""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np

from vla_sim.scene import CUBE_HALF

SITE = 'gripperframe'  # on the fixed jaw's pad; x along the fingers, z toward the moving jaw
PAD_CLEARANCE = 0.015  # m from the pad centre to the cube face: pad half-width + 7 mm margin
GRIPPER_OPEN = 1.2  # rad: wide open (the pads are 40 mm apart at 0.46 rad)
GRIPPER_CLOSED = -0.15  # below the cube's width: the servo squeezes


class ArmIK:
    """Position + top-down orientation IK for the SO-101's five arm joints."""

    def __init__(self, model: mujoco.MjModel, joint_names: tuple[str, ...]):
        self.model = model
        self.data = mujoco.MjData(model)
        self.site = model.site(SITE).id
        arm = [n for n in joint_names if n != 'gripper']
        self._qpos = np.array([model.jnt_qposadr[model.joint(n).id] for n in arm])
        self._dof = np.array([model.jnt_dofadr[model.joint(n).id] for n in arm])
        self._lower = model.jnt_range[[model.joint(n).id for n in arm], 0]
        self._upper = model.jnt_range[[model.joint(n).id for n in arm], 1]

    def solve(
        self,
        q_start: np.ndarray,
        position: np.ndarray,
        fingers: np.ndarray,
        across: np.ndarray,
        iterations: int = 60,
    ) -> np.ndarray:
        """Arm joints (5) for a site pose, searched from `q_start`.

        The site goes to `position` with its x axis along `fingers` and its y axis along
        `across` (unit vectors).
        """
        data = self.data
        q = np.clip(q_start.astype(float), self._lower, self._upper)
        jacp = np.zeros((3, self.model.nv))
        jacr = np.zeros((3, self.model.nv))
        for _ in range(iterations):
            data.qpos[self._qpos] = q
            mujoco.mj_kinematics(self.model, data)
            mujoco.mj_comPos(self.model, data)
            rotation = data.site_xmat[self.site].reshape(3, 3)
            position_error = position - data.site_xpos[self.site]
            orientation_error = 0.5 * (
                np.cross(rotation[:, 0], fingers) + np.cross(rotation[:, 1], across)
            )
            mujoco.mj_jacSite(self.model, data, jacp, jacr, self.site)
            jacobian = np.vstack([jacp[:, self._dof], 0.3 * jacr[:, self._dof]])
            error = np.concatenate([position_error, 0.3 * orientation_error])
            damping = 1e-4 * np.eye(6)
            step = jacobian.T @ np.linalg.solve(jacobian @ jacobian.T + damping, error)
            q = np.clip(q + np.clip(step, -0.2, 0.2), self._lower, self._upper)
            if np.linalg.norm(position_error) < 5e-4 and np.linalg.norm(orientation_error) < 5e-3:
                break
        return q

    def site_pose(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Position and rotation matrix of the site for arm joints `q`."""
        self.data.qpos[self._qpos] = q
        mujoco.mj_kinematics(self.model, self.data)
        return self.data.site_xpos[self.site].copy(), self.data.site_xmat[self.site].reshape(3, 3)


@dataclass(frozen=True)
class Segment:
    """Move the fingertips from `start` to `end` over `duration` s with the gripper at `grip`."""

    duration: float
    end: np.ndarray
    grip_start: float
    grip_end: float


class PickCubeExpert:
    """Above the cube, down, close, lift, hold: a top-down grasp aligned with the cube's faces."""

    hover = 0.15  # m above the table
    grasp = CUBE_HALF  # fixed-jaw pad centre level with the cube's centre
    lift = 0.15
    integral_gain = 4.0  # 1/s: removes the sag of the soft position servos under gravity

    def __init__(self, sim):
        self.sim = sim
        self.ik = ArmIK(sim.model, sim.joint_names)
        self._arm = [i for i, n in enumerate(sim.joint_names) if n != 'gripper']
        self._gripper = sim.joint_names.index('gripper')
        self.plan()

    def plan(self) -> None:
        """Waypoints for the current scene (call after every reset)."""
        task = self.sim.task
        cube = task.cube_position(self.sim.data, task.target)
        adr = self.sim.model.jnt_qposadr[self.sim.model.joint(f'cube_{task.target}').id]
        w, _, _, z = self.sim.data.qpos[adr + 3 : adr + 7]
        cube_yaw = 2.0 * np.arctan2(z, w)
        # Of the four face directions, take the one nearest the arm's own heading (least roll).
        heading = np.arctan2(cube[1], cube[0]) + np.pi / 2
        yaw = cube_yaw + np.pi / 2 * np.round((heading - cube_yaw) / (np.pi / 2))
        self.yaw = yaw
        # The fixed jaw goes beside the cube and the moving jaw closes toward it, along the
        # site's z axis, which for fingers pointing down is (sin yaw, -cos yaw, 0).
        closing = np.array([np.sin(yaw), -np.cos(yaw), 0.0])
        beside = cube - (CUBE_HALF + PAD_CLEARANCE) * closing
        above = np.array([beside[0], beside[1], self.hover])
        at = np.array([beside[0], beside[1], self.grasp])
        up = np.array([beside[0], beside[1], self.lift])
        grip = float(self.sim.joint_state()[0][self.sim.joint_names.index('gripper')])
        self.segments = [
            # Open only once above the cube: the open jaw would sweep the cubes on the way.
            Segment(1.5, above, grip, grip),
            Segment(0.4, above, grip, GRIPPER_OPEN),
            Segment(1.2, at, GRIPPER_OPEN, GRIPPER_OPEN),
            Segment(0.8, at, GRIPPER_OPEN, GRIPPER_CLOSED),
            Segment(0.3, at, GRIPPER_CLOSED, GRIPPER_CLOSED),
            Segment(1.2, up, GRIPPER_CLOSED, GRIPPER_CLOSED),
            Segment(1.2, up, GRIPPER_CLOSED, GRIPPER_CLOSED),
        ]
        self._start_q, _, _ = self.sim.joint_state()
        self._start_tip, rotation = self.ik.site_pose(self._start_q[self._arm])
        self._start_axes = (rotation[:, 0].copy(), rotation[:, 1].copy())
        self._axes = (np.array([0.0, 0.0, -1.0]), np.array([np.cos(yaw), np.sin(yaw), 0.0]))
        self._q = self._start_q[self._arm].copy()
        self._correction = np.zeros(len(self._arm))
        self._last_t = 0.0
        self.duration = sum(s.duration for s in self.segments)

    def targets(self, t: float) -> np.ndarray | None:
        """Joint targets (robot order) at `t` s since `plan()`, or None when done."""
        begin, start = 0.0, self._start_tip
        for index, segment in enumerate(self.segments):
            if t <= begin + segment.duration:
                s = (t - begin) / segment.duration
                smooth = s * s * (3 - 2 * s)
                tip = start + smooth * (segment.end - start)
                fingers, across = self._axes
                if index == 0:  # turn the hand as it travels, not all at once
                    fingers = _blend(self._start_axes[0], fingers, smooth)
                    across = _blend(self._start_axes[1], across, smooth)
                self._q = self.ik.solve(self._q, tip, fingers, across, iterations=20)
                # Like a person watching the arm: push further where it lags behind.
                measured, _, _ = self.sim.joint_state()
                dt, self._last_t = max(t - self._last_t, 0.0), t
                self._correction += self.integral_gain * dt * (self._q - measured[self._arm])
                self._correction = np.clip(self._correction, -0.2, 0.2)
                q = np.empty(len(self.sim.joint_names))
                q[self._arm] = self._q + self._correction
                q[self._gripper] = segment.grip_start + s * (segment.grip_end - segment.grip_start)
                return q
            begin += segment.duration
            start = segment.end
        return None


def _blend(a: np.ndarray, b: np.ndarray, s: float) -> np.ndarray:
    """Unit vector a fraction `s` of the way from unit vector `a` to `b`."""
    mixed = (1.0 - s) * a + s * b
    return mixed / max(np.linalg.norm(mixed), 1e-9)


def run_expert_episode(sim, seed: int, dt: float = 0.02):
    """Reset to `seed` and let the pick-cube expert act at 1/dt Hz; returns the final outcome."""
    sim.reset(seed)
    expert = PickCubeExpert(sim)
    t, outcome = 0.0, None
    while (targets := expert.targets(t)) is not None:
        sim.command(list(sim.joint_names), np.clip(targets, sim.lower, sim.upper).tolist())
        outcome = sim.step(dt)
        t += dt
    return outcome
