"""Controller node: vla/action_chunk + joint_states in, joint_command out at a fixed rate.

Thin ROS adapter over vla_control.controller. The output loop runs in its own thread on
absolute deadlines (an rclpy timer shows multi-ms gaps); subscription and service callbacks
only hand data to the core under a lock.
"""

from __future__ import annotations

import threading
import time

from builtin_interfaces.msg import Duration
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray
from sensor_msgs.msg import JointState
from std_srvs.srv import SetBool
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory
from trajectory_msgs.msg import JointTrajectoryPoint

from vla_common.node import VlaNode
from vla_common.node import declare_parameters
from vla_common.node import diagnostic_array
from vla_common.node import run_node
from vla_common.qos import STATE_QOS
from vla_common.robot_config import load_robot_config
from vla_control.chunk import ChunkRejectedError
from vla_control.controller import PARAMETERS
from vla_control.controller import Controller
from vla_control.controller import ControllerConfig
from vla_control.controller import PeriodStats
from vla_control.controller import controller_health
from vla_control.limits import JointLimits
from vla_control.limits import PDGains
from vla_msgs.msg import ActionChunk


def seconds(stamp: Time | Duration) -> float:
    return stamp.sec + stamp.nanosec * 1e-9


class ControllerNode(VlaNode):
    def __init__(self) -> None:
        super().__init__('controller')
        values = declare_parameters(self, PARAMETERS)
        robot = load_robot_config(values['robot'])
        limits = JointLimits.from_robot_config(robot)
        self.controller = Controller(
            ControllerConfig.from_params(values, robot),
            limits,
            PDGains.from_robot_config(robot, limits.names),
        )
        self._names = list(limits.names)
        self._lock = threading.Lock()
        self._stats = PeriodStats()
        self._stop = threading.Event()
        self._last_rejection = ('', 0.0)
        self._command_pub = self.create_publisher(JointState, 'joint_command', STATE_QOS)
        self._trajectory_pub = None
        if values['publish_trajectory']:
            self._trajectory_pub = self.create_publisher(
                JointTrajectory, values['trajectory_topic'], STATE_QOS
            )
        self._diag_pub = self.create_publisher(DiagnosticArray, 'diagnostics', STATE_QOS)
        self.create_subscription(ActionChunk, 'vla/action_chunk', self._on_chunk, STATE_QOS)
        self.create_subscription(JointState, 'joint_states', self._on_state, STATE_QOS)
        self.create_service(SetBool, 'controller/enable', self._on_enable)
        self.create_service(Trigger, 'controller/estop', self._on_estop)
        self.create_timer(1.0, self._publish_diagnostics)
        self.start_worker(self._output_loop, self._stop.set, 'output', join_timeout=2.0)
        self.get_logger().info(
            f'controlling {len(self._names)} joints of {values["robot"]} at '
            f'{self.controller.config.rate_hz:g} Hz, merge {values["merge"]}'
        )

    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    # --- inputs -----------------------------------------------------------------------------

    def _on_chunk(self, msg: ActionChunk) -> None:
        now = self._now()
        with self._lock:
            try:
                self.controller.on_chunk(
                    sequence=msg.sequence,
                    stamp=seconds(msg.header.stamp),
                    step=seconds(msg.step),
                    joint_names=list(msg.joint_names),
                    horizon=msg.horizon,
                    positions=msg.positions,
                    now=now,
                )
            except ChunkRejectedError as exc:
                self._log_rejection(msg.sequence, str(exc))
                return
            if self._trajectory_pub is not None and self.controller.filter.ready:
                self._publish_trajectory(now, seconds(msg.step))

    def _log_rejection(self, sequence: int, reason: str) -> None:
        """Every new reason is logged; a repeated one at most once a second."""
        now = time.monotonic()
        if reason != self._last_rejection[0] or now - self._last_rejection[1] > 1.0:
            self.get_logger().warning(f'rejected chunk {sequence}: {reason}')
            self._last_rejection = (reason, now)

    def _on_state(self, msg: JointState) -> None:
        with self._lock:
            accepted = self.controller.on_state(msg.name, msg.position, msg.velocity, self._now())
        if not accepted:
            self.get_logger().warning(
                f'ignored joint_states: need finite positions for {self._names}, '
                f'got {list(msg.name)}',
                throttle_duration_sec=2.0,
            )

    def _on_enable(self, request: SetBool.Request, response: SetBool.Response):
        with self._lock:
            self.controller.set_enabled(request.data)
        response.success = True
        response.message = 'enabled' if request.data else 'disabled: no commands are sent'
        self.get_logger().info(response.message)
        return response

    def _on_estop(self, request: Trigger.Request, response: Trigger.Response):
        with self._lock:
            self.controller.estop()
        response.success = True
        response.message = 'estop latched: holding still; call controller/enable to resume'
        self.get_logger().warning(response.message)
        return response

    # --- outputs ----------------------------------------------------------------------------

    def _output_loop(self) -> None:
        period = 1.0 / self.controller.config.rate_hz
        deadline = time.monotonic()
        while not self._stop.is_set():
            deadline += period
            delay = deadline - time.monotonic()
            if delay > 0:
                self._stop.wait(delay)
            woke = time.monotonic()
            if woke - deadline > period:  # fell behind by a whole period: skip, don't burst
                self._stats.overruns += 1
                deadline = woke
            now = self._now()
            with self._lock:
                self._stats.record(deadline, woke)
                command = self.controller.step(now)
            if command is None or not self.context.ok():
                continue
            msg = JointState(name=self._names)
            msg.header.stamp = self.get_clock().now().to_msg()
            msg.position = command.position.tolist()
            msg.velocity = command.velocity.tolist()
            if command.effort is not None:
                msg.effort = command.effort.tolist()
            try:
                self._command_pub.publish(msg)
            except Exception:  # rclpy raises once the context is shut down (Ctrl-C)
                if self.context.ok():
                    raise
                return

    def _publish_trajectory(self, now: float, step: float) -> None:
        """The merged, limit-respecting schedule for a ros2_control joint_trajectory_controller."""
        end = self.controller.schedule.end()
        if end is None or end <= now:
            return
        times, points = self.controller.preview(now, end - now, step)
        msg = JointTrajectory(joint_names=self._names)
        msg.header.stamp = self.get_clock().now().to_msg()
        for t, q in zip(times, points, strict=True):
            nanoseconds = round(t * 1e9)
            msg.points.append(
                JointTrajectoryPoint(
                    positions=q.tolist(),
                    time_from_start=Duration(
                        sec=nanoseconds // 1_000_000_000, nanosec=nanoseconds % 1_000_000_000
                    ),
                )
            )
        self._trajectory_pub.publish(msg)

    def _publish_diagnostics(self) -> None:
        with self._lock:
            health = controller_health(self.controller, self._stats, self._now())
        self._diag_pub.publish(diagnostic_array(self, health, 'controller', 'joint_command'))


def main(args: list[str] | None = None) -> int:
    return run_node(ControllerNode, args)


if __name__ == '__main__':
    raise SystemExit(main())
