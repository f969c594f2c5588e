"""Sim node: a MuJoCo robot that speaks the topics of a real one.

In: joint_command (position targets by joint name). Out: joint_states, camera/<name>/image_raw
and camera_info, sim/success, vla/instruction (latched, at every reset), clock (when
publish_clock), diagnostics (real-time factor, rejected commands), and with `expert:=true`
leader/joint_states: a scripted demonstrator moving a virtual leader arm, as a person would
(the teleop node turns it into joint_command). Service: sim/reset.

Physics, rendering and publishing run in one thread (the renderer's GL context belongs to the
thread that made it); callbacks only hand commands and resets over under a lock.
"""

from __future__ import annotations

import threading
import time

import mujoco
import numpy as np
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import CameraInfo
from sensor_msgs.msg import Image
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool
from std_msgs.msg import String

from vla_common.diagnostics import Health
from vla_common.diagnostics import Level
from vla_common.errors import ConfigError
from vla_common.node import VlaNode
from vla_common.node import declare_parameters
from vla_common.node import diagnostic_array
from vla_common.node import pinhole_camera_info
from vla_common.node import run_node
from vla_common.qos import IMAGE_QOS
from vla_common.qos import LATCHED_QOS
from vla_common.qos import STATE_QOS
from vla_msgs.srv import ResetScene
from vla_perception.image_conversion import numpy_to_image
from vla_sim.config import PARAMETERS
from vla_sim.config import SimConfig
from vla_sim.experts import ScriptedExpert
from vla_sim.experts import expert_for
from vla_sim.simulation import CommandRejectedError
from vla_sim.simulation import Simulation
from vla_sim.simulation import intrinsics


def to_time(seconds: float) -> Time:
    nanoseconds = round(seconds * 1e9)
    return Time(sec=nanoseconds // 1_000_000_000, nanosec=nanoseconds % 1_000_000_000)


class SimNode(VlaNode):
    def __init__(self) -> None:
        super().__init__('sim')
        self.config = SimConfig.from_params(declare_parameters(self, PARAMETERS))
        config = self.config
        self.sim = Simulation(config.robot, config.task, config.width, config.height)
        known = [self.sim.model.camera(i).name for i in range(self.sim.model.ncam)]
        missing = [c for c in config.cameras if c not in known]
        if missing:
            raise ConfigError(f'unknown cameras {missing}; the scene has {known}')
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._rejected = 0
        self._last_rejection = ''
        self._success = False
        self._outcome = None
        self._rtf = 0.0
        self._scene = 0  # counts resets: results of a previous scene are not published
        self._clock_offset = 0.0
        self._expert: ScriptedExpert | None = None
        self._leader = None  # the expert's last leader position
        # Sim time the expert started moving: at the first valid joint_command after a reset,
        # so that it never runs ahead of a follower that is not listening yet (at start-up).
        self._expert_start: float | None = None
        self._commanded = False
        self._leader_pub = None
        if config.expert:
            self._leader_pub = self.create_publisher(JointState, 'leader/joint_states', STATE_QOS)
        self._state_pub = self.create_publisher(JointState, 'joint_states', STATE_QOS)
        self._success_pub = self.create_publisher(Bool, 'sim/success', STATE_QOS)
        self._instruction_pub = self.create_publisher(String, 'vla/instruction', LATCHED_QOS)
        self._clock_pub = (
            self.create_publisher(Clock, 'clock', STATE_QOS) if config.publish_clock else None
        )
        self._diag_pub = self.create_publisher(DiagnosticArray, 'diagnostics', STATE_QOS)
        self._cameras = {
            name: (
                self.create_publisher(Image, f'camera/{name}/image_raw', IMAGE_QOS),
                self.create_publisher(CameraInfo, f'camera/{name}/camera_info', STATE_QOS),
                self._camera_info(name),
            )
            for name in config.cameras
        }
        self.create_subscription(JointState, 'joint_command', self._on_command, STATE_QOS)
        self.create_service(ResetScene, 'sim/reset', self._on_reset)
        self.create_timer(1.0, self._publish_diagnostics)
        self._reset(config.seed, None)
        self.start_worker(self._loop, self._stop.set, 'physics')
        self.get_logger().info(
            f'simulating {config.robot} ({config.task}, seed {config.seed}): '
            f'"{self.sim.instruction}"; cameras {list(config.cameras)} at '
            f'{config.camera_fps:g} fps'
        )

    # --- inputs ---------------------------------------------------------------------------

    def _on_command(self, msg: JointState) -> None:
        try:
            with self._lock:
                self.sim.command(list(msg.name), list(msg.position))
                self._commanded = True
        except CommandRejectedError as exc:
            self._rejected += 1
            self._last_rejection = str(exc)
            self.get_logger().warning(
                f'rejected joint_command: {exc}; holding the last valid targets',
                throttle_duration_sec=1.0,
            )

    def _on_reset(self, request: ResetScene.Request, response: ResetScene.Response):
        try:
            response.instruction = self._reset(request.seed, request.task or None)
        except ConfigError as exc:
            self.get_logger().error(f'sim/reset refused: {exc}')
            response.success, response.message = False, str(exc)
            return response
        response.success = True
        response.message = f'reset {self.sim.task.name} with seed {request.seed}'
        return response

    def _reset(self, seed: int, task: str | None) -> str:
        with self._lock:
            time_before = self.sim.time
            instruction = self.sim.reset(seed, task)  # raises ConfigError before changing a thing
            self._clock_offset += time_before  # /clock never runs backwards across resets
            self._scene += 1
            self._success = False
            if self._leader_pub is not None:
                self._expert = expert_for(self.sim)
                self._leader = None
                self._expert_start, self._commanded = None, False
        self._instruction_pub.publish(String(data=instruction))
        return instruction

    # --- the physics thread ---------------------------------------------------------------

    def _loop(self) -> None:
        config = self.config
        renderer = None
        dt = 1.0 / config.state_rate_hz
        camera_period = 1.0 / config.camera_fps
        leader_period = 1.0 / config.expert_rate_hz
        wall_start, sim_start, next_frame, last_t = time.monotonic(), None, 0.0, -1.0
        next_leader = 0.0
        window = (time.monotonic(), 0.0)  # wall, sim time at the start of the RTF window
        try:
            renderer = mujoco.Renderer(self.sim.model, config.height, config.width)
            renderer.scene.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = 0
            while not self._stop.is_set() and self.context.ok():
                with self._lock:
                    outcome = self.sim.step(dt)
                    t = self.sim.time
                    position, velocity, effort = self.sim.joint_state()
                    scene = self._scene
                if t < last_t or sim_start is None:  # first tick or a reset: time restarted
                    wall_start, sim_start, next_frame, next_leader = time.monotonic(), t - dt, t, t
                    window = (wall_start, t)
                last_t = t
                stamp = self._stamp(t)
                if self._clock_pub is not None:
                    self._clock_pub.publish(Clock(clock=stamp))
                state = JointState(
                    name=list(self.sim.joint_names),
                    position=position.tolist(),
                    velocity=velocity.tolist(),
                    effort=effort.tolist(),
                )
                state.header.stamp = stamp
                self._state_pub.publish(state)
                if self._leader_pub is not None and t >= next_leader:
                    next_leader = max(next_leader + leader_period, t)
                    self._publish_leader(t, stamp)
                with self._lock:
                    if scene == self._scene:  # no reset since this step
                        self._outcome = outcome
                        changed = outcome.success != self._success
                        self._success = outcome.success
                    else:
                        changed = False
                if changed:
                    self._success_pub.publish(Bool(data=outcome.success))
                if t >= next_frame:
                    next_frame = max(next_frame + camera_period, t)
                    self._render(renderer, stamp)
                    self._success_pub.publish(Bool(data=self._success))
                wall_now = time.monotonic()
                if wall_now - window[0] >= 1.0:
                    self._rtf = (t - window[1]) / (wall_now - window[0])
                    window = (wall_now, t)
                if config.realtime:
                    delay = wall_start + (t - sim_start) - time.monotonic()
                    if delay > 0:
                        self._stop.wait(delay)
                    elif delay < -0.5:  # far behind (slow machine): drop the debt, don't sprint
                        wall_start = time.monotonic() - (t - sim_start)
        except Exception as exc:  # a dead physics thread must not leave a silent node
            if self.context.ok():
                self.request_exit(1, f'simulation failed: {type(exc).__name__}: {exc}')
        finally:
            if renderer is not None:
                renderer.close()

    def _publish_leader(self, t: float, stamp: Time) -> None:
        """The expert's arm, as a leader arm would report it; held still once the task is done.

        It holds its first pose until a joint_command shows that the follower listens, and for
        expert_delay_s after that.
        """
        with self._lock:
            if self._expert is not None and self._expert_start is None and self._commanded:
                self._expert_start = t + self.config.expert_delay_s
                self.get_logger().info(f'expert: moving at sim time {self._expert_start:.2f} s')
            elapsed = 0.0 if self._expert_start is None else max(0.0, t - self._expert_start)
            targets = self._expert.targets(elapsed) if self._expert is not None else None
            if targets is not None:
                self._leader = np.clip(targets, self.sim.lower, self.sim.upper)
            elif self._expert is not None:
                result = 'success' if self._success else 'no success yet'
                self.get_logger().info(f'expert: done after {elapsed:.2f} s, {result}')
                self._expert = None  # the leader holds its last position
            position = self._leader
        if position is None:
            return
        leader = JointState(name=list(self.sim.joint_names), position=position.tolist())
        leader.header.stamp = stamp
        self._leader_pub.publish(leader)

    def _stamp(self, sim_time: float) -> Time:
        """Simulated time when it is published on /clock, else the wall clock at capture."""
        if self._clock_pub is not None:
            return to_time(self._clock_offset + sim_time)
        return self.get_clock().now().to_msg()

    def _render(self, renderer: mujoco.Renderer, stamp: Time) -> None:
        for name, (image_pub, info_pub, info) in self._cameras.items():
            with self._lock:
                renderer.update_scene(self.sim.data, camera=name)
            pixels = renderer.render()
            image = numpy_to_image(pixels, 'rgb8', Image())
            image.header.stamp = stamp
            image.header.frame_id = info.header.frame_id
            image_pub.publish(image)
            info.header.stamp = stamp
            info_pub.publish(info)

    def _camera_info(self, name: str) -> CameraInfo:
        width, height = self.config.width, self.config.height
        pinhole = intrinsics(self.sim.camera_fovy(name), width, height)
        return pinhole_camera_info(width, height, pinhole, f'{name}_optical_frame')

    def _publish_diagnostics(self) -> None:
        outcome = self._outcome
        values = {
            'real_time_factor': f'{self._rtf:.3f}',
            'sim_time_s': f'{self.sim.time:.3f}',
            'task': self.sim.task.name,
            'seed': str(self.sim.seed),
            'instruction': self.sim.instruction,
            'success': str(bool(outcome and outcome.success)),
            'wrong_object': str(bool(outcome and outcome.wrong_object)),
            'commands_rejected': str(self._rejected),
            'last_rejection': self._last_rejection,
        }
        result = 'success' if outcome and outcome.success else 'not yet'
        if outcome and outcome.wrong_object:
            result += ', wrong object lifted'
        level, message = Level.OK, f'"{self.sim.instruction}": {result}'
        if self.config.realtime and 0 < self._rtf < 0.9:
            level, message = Level.WARN, f'slower than real time (factor {self._rtf:.2f})'
        health = Health(level, message, values)
        self._diag_pub.publish(diagnostic_array(self, health, 'simulation', self.config.robot))


def main(args: list[str] | None = None) -> int:
    return run_node(SimNode, args)


if __name__ == '__main__':
    raise SystemExit(main())
