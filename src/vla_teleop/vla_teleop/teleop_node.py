"""Teleop node: leader/joint_states -> joint_command at a fixed rate, for the sim or real arms.

Thin ROS adapter over vla_teleop.teleop.
"""

from __future__ import annotations

from diagnostic_msgs.msg import DiagnosticArray
from sensor_msgs.msg import JointState

from vla_common.diagnostics import Health
from vla_common.diagnostics import Level
from vla_common.node import VlaNode
from vla_common.node import declare_parameters
from vla_common.node import diagnostic_array
from vla_common.node import run_node
from vla_common.qos import STATE_QOS
from vla_common.robot_config import load_robot_config
from vla_teleop.mapping import LeaderStateError
from vla_teleop.teleop import PARAMETERS
from vla_teleop.teleop import Teleop


class TeleopNode(VlaNode):
    def __init__(self) -> None:
        super().__init__('teleop')
        values = declare_parameters(self, PARAMETERS)
        self.teleop = Teleop(
            load_robot_config(values['robot']), values['rate_hz'], values['leader_timeout_s']
        )
        self._command_pub = self.create_publisher(JointState, 'joint_command', STATE_QOS)
        self._diag_pub = self.create_publisher(DiagnosticArray, 'diagnostics', STATE_QOS)
        self.create_subscription(JointState, 'leader/joint_states', self._on_leader, STATE_QOS)
        self.create_subscription(JointState, 'joint_states', self._on_state, STATE_QOS)
        self.create_timer(1.0 / values['rate_hz'], self._tick)
        self.create_timer(1.0, self._publish_diagnostics)
        self.get_logger().info(
            f'teleoperating {values["robot"]} at {values["rate_hz"]:g} Hz: '
            'leader/joint_states -> joint_command'
        )

    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _on_leader(self, msg: JointState) -> None:
        try:
            self.teleop.on_leader(msg.name, msg.position, self._now())
        except LeaderStateError as exc:
            self.get_logger().warning(
                f'ignored leader joint_states: {exc}; the follower holds',
                throttle_duration_sec=1.0,
            )

    def _on_state(self, msg: JointState) -> None:
        self.teleop.on_state(msg.name, msg.position, self._now())

    def _tick(self) -> None:
        command = self.teleop.step(self._now())
        if command is None:
            return
        msg = JointState(
            name=list(command.names),
            position=command.position.tolist(),
            velocity=command.velocity.tolist(),
        )
        msg.header.stamp = self.get_clock().now().to_msg()
        self._command_pub.publish(msg)

    def _publish_diagnostics(self) -> None:
        status = self.teleop.status(self._now())
        values = {
            'leader_messages_rejected': str(self.teleop.rejected),
            'last_rejection': self.teleop.last_rejection,
        }
        level = Level.OK if status == 'following' else Level.WARN
        health = Health(level, status, values)
        self._diag_pub.publish(diagnostic_array(self, health, 'teleop', 'leader/joint_states'))


def main(args: list[str] | None = None) -> int:
    return run_node(TeleopNode, args)


if __name__ == '__main__':
    raise SystemExit(main())
