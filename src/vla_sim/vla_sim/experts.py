"""Scripted experts: joint targets from end-effector waypoints, like a person at the leader arm.

Inverse kinematics is damped least squares on MuJoCo's site Jacobians, solved on a private
copy of the state so the physics is never touched. Each arm follows timed waypoints of a site
(position, two axes, gripper); the joint targets aim past the IK solution by what the position
servos sag, from the model's gravity torques or, where friction makes that unknown, an
integral of the measured error (as a person watching the follower would). The expert reads
the scene (object poses) from the simulator: it is a demonstrator, not a policy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import replace

import mujoco
import numpy as np

from vla_sim.scene import ALOHA_ARM
from vla_sim.scene import CUBE_HALF
from vla_sim.scene import PEG_HALF
from vla_sim.scene import PINCH_TO_TIP
from vla_sim.scene import SOCKET_HALF

# The SO-101's IK site, on the fixed jaw's pad: x along the fingers, z toward the moving jaw.
SITE = 'gripperframe'
PAD_CLEARANCE = 0.015  # m from the pad centre to the cube face: pad half-width + 7 mm margin
GRIPPER_OPEN = 1.2  # rad: wide open (the pads are 40 mm apart at 0.46 rad)
GRIPPER_CLOSED = -0.15  # below the cube's width: the servo squeezes
# vx300s finger slides (m from the centre line): wide open, and shut (objects are squeezed).
ALOHA_OPEN, ALOHA_CLOSED = 0.057, 0.021
DOWN = np.array([0.0, 0.0, -1.0])


class ArmIK:
    """Position + orientation IK of a site for one arm's joints (MJCF names)."""

    def __init__(self, model: mujoco.MjModel, arm: Sequence[str], site: str):
        self.model = model
        self.data = mujoco.MjData(model)
        self.site = model.site(site).id
        self._qpos = np.array([model.jnt_qposadr[model.joint(n).id] for n in arm])
        self.dofs = np.array([model.jnt_dofadr[model.joint(n).id] for n in arm])
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
        """Arm joints for a site pose, searched from `q_start`.

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
            jacobian = np.vstack([jacp[:, self.dofs], 0.3 * jacr[:, self.dofs]])
            error = np.concatenate([position_error, 0.3 * orientation_error])
            damping = 1e-4 * np.eye(6)  # 5 joints (SO-101) cannot reach every pose: least squares
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
class Waypoint:
    """Where an arm's site is at `time` s after planning, and the gripper target.

    The site's x axis points along `fingers`, its y axis along `across` (unit vectors).
    """

    time: float
    position: np.ndarray
    fingers: np.ndarray
    across: np.ndarray
    grip: float


@dataclass(frozen=True)
class GraspGoal:
    """A top-down grasp of the asked cube: site positions, jaw direction, arm heading."""

    at: np.ndarray
    above: np.ndarray
    across: np.ndarray
    heading: float
    close_and_lift: list


class ArmTrack:
    """One arm following waypoints from where it is now.

    Between waypoints the site moves on a smooth step (no jerk at the ends), its axes turn
    along, and the gripper moves linearly.
    """

    def __init__(
        self,
        sim,
        ik: ArmIK,
        arm: Sequence[int],
        gripper: int,
        waypoints: Sequence[Waypoint],
        integral_gain: float = 0.0,
        correction_limit: float = 0.2,
        gravity_feedforward: bool = False,
    ):
        """Against sag, two ways.

        `gravity_feedforward` adds gravity torque / servo gain to the targets;
        `integral_gain` (1/s) integrates the measured error, up to `correction_limit` (rad).
        The integral also removes friction's error, but winds up while the follower lags
        (teleop stalls) and then overshoots; the feedforward cannot wind up.
        """
        self.sim, self.ik = sim, ik
        self.arm, self.gripper = list(arm), gripper
        self.correction_limit, self.integral_gain = correction_limit, integral_gain
        self.gravity_feedforward = gravity_feedforward
        q = sim.joint_state()[0]
        self._q = q[self.arm].copy()
        self._correction = np.zeros(len(self.arm))
        # Steering on top of the plan (from what the expert sees): moved by, turned by.
        self.shift, self.turn = np.zeros(3), np.eye(3)
        self._last_t = 0.0
        position, rotation = ik.site_pose(self._q)
        start = Waypoint(0.0, position, rotation[:, 0].copy(), rotation[:, 1].copy(), q[gripper])
        self.waypoints = [start, *waypoints]

    @property
    def duration(self) -> float:
        return self.waypoints[-1].time

    def site_now(self) -> tuple[np.ndarray, np.ndarray]:
        """Where the site is now and its rotation matrix (measured joints)."""
        return self.ik.site_pose(self.sim.joint_state()[0][self.arm])

    def pose_at(self, t: float) -> Waypoint:
        """The planned pose at `t`."""
        after = next((i for i, w in enumerate(self.waypoints) if w.time >= t), None)
        if after is None or after == 0:  # past the last waypoint, or at the first
            return replace(self.waypoints[-1 if after is None else 0], time=t)
        a, b = self.waypoints[after - 1], self.waypoints[after]
        s = (t - a.time) / max(b.time - a.time, 1e-9)
        smooth = s * s * (3 - 2 * s)
        return Waypoint(
            t,
            a.position + smooth * (b.position - a.position),
            _blend(a.fingers, b.fingers, smooth),
            _blend(a.across, b.across, smooth),
            a.grip + s * (b.grip - a.grip),
        )

    def fill(self, t: float, q: np.ndarray) -> None:
        """Write this arm's joint targets at `t` into `q` (robot order)."""
        pose = self.pose_at(t)
        position, fingers, across = (
            pose.position + self.shift,
            self.turn @ pose.fingers,
            self.turn @ pose.across,
        )
        self._q = self.ik.solve(self._q, position, fingers, across, iterations=20)
        measured = self.sim.joint_state()[0][self.arm]
        dt, self._last_t = max(t - self._last_t, 0.0), t
        self._correction += self.integral_gain * dt * (self._q - measured)
        limit = self.correction_limit
        self._correction = np.clip(self._correction, -limit, limit)
        q[self.arm] = self._q + self._correction
        if self.gravity_feedforward:
            data = self.ik.data  # at the solution of the last solve
            mujoco.mj_forward(self.ik.model, data)
            q[self.arm] += data.qfrc_bias[self.ik.dofs] / self.sim.position_gains[self.arm]
        q[self.gripper] = pose.grip


class ScriptedExpert:
    """Arms following waypoints planned from the scene at reset; subclasses plan them."""

    def __init__(self, sim):
        self.sim = sim
        self.plan()

    def plan(self) -> None:
        """Waypoints for the current scene (call after every reset)."""
        self.tracks = self.make_tracks()

    def make_tracks(self) -> list[ArmTrack]:
        raise NotImplementedError

    @property
    def duration(self) -> float:
        return max(track.duration for track in self.tracks)

    def targets(self, t: float) -> np.ndarray | None:
        """Joint targets (robot order) at `t` s since `plan()`, or None when done."""
        if t > self.duration:
            return None
        self.adapt(t)
        q = np.empty(len(self.sim.joint_names))
        for track in self.tracks:
            track.fill(t, q)
        return q

    def adapt(self, t: float) -> None:
        """Change the remaining waypoints from what is seen at `t` (none by default)."""


class PickCubeExpert(ScriptedExpert):
    """SO-101: above the cube, down, close, lift, hold: a top-down grasp aligned with its faces.

    Like a person at the leader arm, it first goes only roughly above the cube (up to
    `approach_miss` off, the hand turned by the arm's heading alone), pauses, then lines the
    jaws up with the cube, which the wrist camera sees. The demonstrations so show how to
    correct a miss: a policy's own first approach misses by centimetres, and the grasp
    forgives only about 5 mm and 0.2 rad. The miss is seeded by the scene (same seed, same
    demonstration).
    """

    hover = 0.15  # m above the table
    grasp = CUBE_HALF  # fixed-jaw pad centre level with the cube's centre
    lift = 0.15
    approach_miss = 0.04  # m

    def make_tracks(self) -> list[ArmTrack]:
        goal = self.grasp_goal()
        # Its own stream of the scene's seed: the task's stream placed the cubes.
        rng = np.random.default_rng([self.sim.seed, 1])
        miss = self.approach_miss * np.sqrt(rng.uniform()) * _unit_xy(rng.uniform(0, 2 * np.pi))
        roughly_above = goal.above + miss
        grip = float(self.sim.joint_state()[0][self.sim.joint_names.index('gripper')])
        # The hand turns on the first leg, as it travels (turning it at once swept the other
        # cubes); it opens only above the cube.
        rough = [
            Waypoint(1.5, roughly_above, DOWN, _unit_xy(goal.heading), grip),
            Waypoint(1.7, roughly_above, DOWN, _unit_xy(goal.heading), grip),
        ]
        legs = [
            (0.8, goal.above, GRIPPER_OPEN),
            (1.2, goal.at, GRIPPER_OPEN),
            *goal.close_and_lift,
        ]
        return [self.track(rough + _timed(legs, DOWN, goal.across, start=rough[-1].time))]

    def grasp_goal(self) -> GraspGoal:
        """Where the site grasps the asked cube, with the jaws along its faces."""
        sim, task = self.sim, self.sim.task
        cube = task.cube_position(sim.data, task.target)
        adr = sim.model.jnt_qposadr[sim.model.joint(f'cube_{task.target}').id]
        w, _, _, z = sim.data.qpos[adr + 3 : adr + 7]
        cube_yaw = 2.0 * np.arctan2(z, w)
        # Of the four face directions, take the one nearest the arm's own heading (least roll).
        heading = np.arctan2(cube[1], cube[0]) + np.pi / 2
        yaw = cube_yaw + np.pi / 2 * np.round((heading - cube_yaw) / (np.pi / 2))
        # The fixed jaw goes beside the cube and the moving jaw closes toward it, along the
        # site's z axis, which for fingers pointing down is (sin yaw, -cos yaw, 0).
        closing = np.array([np.sin(yaw), -np.cos(yaw), 0.0])
        beside = cube - (CUBE_HALF + PAD_CLEARANCE) * closing
        at = np.array([beside[0], beside[1], self.grasp])
        up = np.array([beside[0], beside[1], self.lift])
        return GraspGoal(
            at=at,
            above=np.array([beside[0], beside[1], self.hover]),
            across=_unit_xy(yaw),
            heading=heading,
            close_and_lift=[  # (duration, site position, gripper at the end)
                (0.8, at, GRIPPER_CLOSED),
                (0.3, at, GRIPPER_CLOSED),
                (1.2, up, GRIPPER_CLOSED),
                (1.2, up, GRIPPER_CLOSED),
            ],
        )

    def track(self, waypoints: list[Waypoint]) -> ArmTrack:
        sim = self.sim
        arm = [i for i, n in enumerate(sim.joint_names) if n != 'gripper']
        ik = ArmIK(sim.model, [sim.joint_names[i] for i in arm], SITE)
        gripper = sim.joint_names.index('gripper')
        return ArmTrack(sim, ik, arm, gripper, waypoints, gravity_feedforward=True)


class PickCubeTakeover(PickCubeExpert):
    """The pick taken over from wherever the arm is, as a person grabbing the leader would.

    For corrections of a policy's attempt (DAgger): the hand goes straight to the grasp
    column, high enough to pass over the cubes unless it is already above the grasp point,
    opens, settles, then goes down and grasps like the expert. Until it goes down it aims at
    where the cube is now: a hand that starts on the table may push it on the way up.
    """

    speed = 0.15  # m/s to the grasp column
    clearance = 0.05  # m above the grasp height when moving sideways
    aligned = 0.01  # m: nearer than this (xy) to the grasp point, it goes straight down

    def make_tracks(self) -> list[ArmTrack]:
        goal = self.grasp_goal()
        track = self.track([])
        site = track.waypoints[0].position
        off = np.linalg.norm((site - goal.at)[:2])
        low = self.grasp if off < self.aligned else self.grasp + self.clearance
        column = np.array([goal.at[0], goal.at[1], np.clip(site[2], low, self.hover)])
        reach = 0.4 + np.linalg.norm(column - site) / self.speed
        descent = 0.4 + 1.2 * (column[2] - self.grasp) / (self.hover - self.grasp)
        legs = [
            (reach, column, GRIPPER_OPEN),
            (0.3, column, GRIPPER_OPEN),
            (descent, goal.at, GRIPPER_OPEN),
            *goal.close_and_lift,
        ]
        track.waypoints += _timed(legs, DOWN, goal.across)
        self._aim_until = track.waypoints[2].time  # the end of the settling pause
        return [track]

    def adapt(self, t: float) -> None:
        if t > self._aim_until:
            return
        goal = self.grasp_goal()
        track = self.tracks[0]
        for i, waypoint in enumerate(track.waypoints):
            if waypoint.time > t:
                position = np.array([goal.at[0], goal.at[1], waypoint.position[2]])
                track.waypoints[i] = replace(waypoint, position=position, across=goal.across)


class AlohaExpert(ScriptedExpert):
    """Both vx300s arms, steered by their grippers' pinch points."""

    def arm_track(self, side: str, legs, fingers, across) -> ArmTrack:
        names = self.sim.joint_names
        arm = [names.index(f'{side}_{joint}') for joint in ALOHA_ARM]
        ik = ArmIK(
            self.sim.model,
            [f'vx300s_{side}/{joint}' for joint in ALOHA_ARM],
            f'vx300s_{side}/pinch',
        )
        return ArmTrack(
            self.sim,
            ik,
            arm,
            names.index(f'{side}_gripper'),
            _timed(legs, fingers, across),
            # The joints' friction (up to 60 N m) leaves errors gravity does not explain: an
            # integral, gentle because the wrist servos are soft (kp 10-50) and slow (pushed at
            # 4/s they overshoot and swing a held peg when commands lag: insertion 16/20 at 60 ms).
            integral_gain=2.0,
            correction_limit=0.3,
        )


def grasp_height(centre_z: float) -> float:
    """Pinch-point height for a top-down grasp of an object centred at `centre_z`.

    At the centre, but with the fingertips 6 mm clear of the table.
    """
    return max(centre_z, PINCH_TO_TIP + 0.006)


class TransferCubeExpert(AlohaExpert):
    """The right arm picks the box from above and holds it up at the meeting point.

    The left arm comes in level from the side with its fingers closing top and bottom (the
    right fingers hold the sides) and closes; the right lets go and backs away.
    """

    meet = np.array([0.0, 0.5, 0.22])

    def make_tracks(self) -> list[ArmTrack]:
        box = self.sim.task.box_position(self.sim.data)
        grasp = np.array([box[0], box[1], grasp_height(box[2])])
        above = grasp + np.array([0.0, 0.0, 0.1])
        meet = self.meet
        away = meet + np.array([0.05, 0.0, 0.1])
        ready, take, back = (meet + np.array([dx, 0.0, 0.0]) for dx in (-0.14, -0.01, -0.09))
        right = [
            (1.2, above, ALOHA_OPEN),
            (0.7, grasp, ALOHA_OPEN),
            (0.5, grasp, ALOHA_CLOSED),
            (1.0, meet, ALOHA_CLOSED),
            (1.2, meet, ALOHA_CLOSED),
            (0.4, meet, ALOHA_OPEN),
            (0.8, away, ALOHA_OPEN),
            (0.7, away, ALOHA_OPEN),
        ]
        left = [
            (2.4, ready, ALOHA_OPEN),
            (1.0, ready, ALOHA_OPEN),
            (0.8, take, ALOHA_OPEN),
            (0.4, take, ALOHA_CLOSED),
            (0.4, take, ALOHA_CLOSED),
            (0.8, back, ALOHA_CLOSED),
            (0.7, back, ALOHA_CLOSED),
        ]
        level, upright = np.array([1.0, 0.0, 0.0]), np.array([0.0, 0.0, 1.0])
        return [
            self.arm_track('left', left, level, upright),
            self.arm_track('right', right, DOWN, np.array([0.0, -1.0, 0.0])),
        ]


class InsertionExpert(AlohaExpert):
    """The left arm picks the socket by its far end, the right the peg by its near end.

    Both lift them to face each other in the air, and the right arm pushes the peg in. There
    is 8 mm to spare on each side, less than the objects shift and turn in the fingers, so
    once both are up the expert steers the right hand by what it sees, as a person would:
    the peg turned to lie along the socket, its tip first 2 cm in front of the opening, then
    1.8 cm inside it (the pin stops it at 2 cm).
    """

    grip_offset = 0.03  # m from an object's centre, along it, to where it is held
    lift_at = 3.6  # s: both objects up, in front of each other; steering starts
    push_at, pushed_at = 5.0, 6.0  # s: the tip goes in between these times
    steer_gain = 2.5  # 1/s: the fraction of the tip's position error corrected per second
    turn_gain = 1.0  # 1/s: the same for the peg's direction (slower: it swings the tip)
    left_up = np.array([-0.13, 0.5, 0.2])
    right_up = np.array([0.13, 0.5, 0.2])

    def make_tracks(self) -> list[ArmTrack]:
        task = self.sim.task
        peg, socket = task.peg.position(self.sim.data), task.socket.position(self.sim.data)
        legs = {}
        for side, centre, sign, up in (
            ('left', socket, -1.0, self.left_up),
            ('right', peg, 1.0, self.right_up),
        ):
            grasp = centre + np.array([sign * self.grip_offset, 0.0, 0.0])
            grasp[2] = grasp_height(centre[2])
            above = grasp + np.array([0.0, 0.0, 0.1])
            legs[side] = [
                (1.2, above, ALOHA_OPEN),
                (0.7, grasp, ALOHA_OPEN),
                (0.5, grasp, ALOHA_CLOSED),
                (self.lift_at - 2.4, up, ALOHA_CLOSED),
                (self.pushed_at + 1.2 - self.lift_at, up, ALOHA_CLOSED),
            ]
        self._steered_until = self.lift_at
        return [
            self.arm_track('left', legs['left'], DOWN, np.array([0.0, 1.0, 0.0])),
            self.arm_track('right', legs['right'], DOWN, np.array([0.0, -1.0, 0.0])),
        ]

    def adapt(self, t: float) -> None:
        if t <= self._steered_until:
            return
        dt, self._steered_until = t - self._steered_until, t
        task, data = self.sim.task, self.sim.data
        peg_axis = task.peg.rotation(data)[:, 0]
        socket_axis = task.socket.rotation(data)[:, 0]
        s = np.clip((t - self.push_at) / (self.pushed_at - self.push_at), 0.0, 1.0)
        depth = -0.02 + 0.038 * s * s * (3 - 2 * s)  # m past the opening
        aim = task.socket.position(data) + (SOCKET_HALF[0] - depth) * socket_axis
        tip = task.peg.position(data) - PEG_HALF[0] * peg_axis
        right = self.tracks[1]
        right.shift += min(self.steer_gain * dt, 1.0) * (aim - tip)
        turned = _blend(peg_axis, socket_axis, min(self.turn_gain * dt, 1.0))
        right.turn = _rotation_between(peg_axis, turned) @ right.turn


def _timed(legs, fingers: np.ndarray, across: np.ndarray, start: float = 0.0) -> list[Waypoint]:
    """Waypoints from (duration, position, grip) legs from `start` on, all with the same axes."""
    waypoints, t = [], start
    for duration, position, grip in legs:
        t += duration
        waypoints.append(Waypoint(t, np.asarray(position, float), fingers, across, grip))
    return waypoints


def _unit_xy(angle: float) -> np.ndarray:
    """The horizontal unit vector at `angle` (rad) from +x."""
    return np.array([np.cos(angle), np.sin(angle), 0.0])


def _rotation_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The smallest rotation (matrix) that turns unit vector `a` onto unit vector `b`."""
    cross, cos = np.cross(a, b), float(np.dot(a, b))
    skew = np.array(
        [[0.0, -cross[2], cross[1]], [cross[2], 0.0, -cross[0]], [-cross[1], cross[0], 0.0]]
    )
    return np.eye(3) + skew + skew @ skew / (1.0 + cos)


def _blend(a: np.ndarray, b: np.ndarray, s: float) -> np.ndarray:
    """Unit vector a fraction `s` of the way from unit vector `a` to `b`."""
    mixed = (1.0 - s) * a + s * b
    return mixed / max(np.linalg.norm(mixed), 1e-9)


EXPERTS = {
    'pick_cube': PickCubeExpert,
    'transfer_cube': TransferCubeExpert,
    'insertion': InsertionExpert,
}


# Experts that finish a task from wherever the arm is (for corrections of a policy's attempt).
TAKEOVER_EXPERTS = {'pick_cube': PickCubeTakeover}


def expert_for(sim) -> ScriptedExpert:
    """The scripted expert of the simulation's current task, planned for its scene."""
    return EXPERTS[sim.task.name](sim)


def grasp_pose(sim) -> np.ndarray:
    """Joint targets (sim order) where the expert grasps the object the task asks for.

    That is, when its gripper command is half closed on it.
    """
    expert = expert_for(sim)
    waypoints = expert.tracks[0].waypoints
    closed = next(i for i, w in enumerate(waypoints) if w.grip == GRIPPER_CLOSED)
    return expert.targets((waypoints[closed - 1].time + waypoints[closed].time) / 2)


def run_expert_episode(sim, seed: int, dt: float = 0.02):
    """Reset to `seed` and let the task's expert act at 1/dt Hz; returns the final outcome."""
    sim.reset(seed)
    expert = expert_for(sim)
    t, outcome = 0.0, None
    while (targets := expert.targets(t)) is not None:
        sim.command(list(sim.joint_names), np.clip(targets, sim.lower, sim.upper).tolist())
        outcome = sim.step(dt)
        t += dt
    return outcome
