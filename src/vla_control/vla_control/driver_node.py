"""Servo driver node: a real arm's joint_command in and joint_states out (or a leader arm's).

Thin ROS adapter over vla_control.servo.robot.ServoRobot (parameters: its PARAMETERS).
follower: joint_command (position targets by joint name; unknown names, NaN or out-of-range
targets reject the whole message and the last valid targets hold) -> servos; joint_states at
`rate_hz`. leader: torque off; leader/joint_states at `rate_hz`. Both: diagnostics every
second with read failures, the age of the last good reading, and ERROR in a bus fault (the
follower then sends no new goals and its servos hold the last one with torque on).

The bus runs in its own thread on absolute deadlines: serial transfers block for up to a
timeout, which must not hold up the executor. joint_states are only published for cycles in
which every bus answered, stamped when the reading arrived.
"""

from __future__ import annotations

import threading
import time

from diagnostic_msgs.msg import DiagnosticArray
from sensor_msgs.msg import JointState

from vla_common.diagnostics import Level
from vla_common.node import VlaNode
from vla_common.node import declare_parameters
from vla_common.node import diagnostic_array
from vla_common.node import run_node
from vla_common.qos import STATE_QOS
from vla_common.robot_config import load_robot_config
from vla_control.servo.driver import TargetRejectedError
from vla_control.servo.robot import PARAMETERS
from vla_control.servo.robot import Mode
from vla_control.servo.robot import servo_robot_from_params


class DriverNode(VlaNode):
    def __init__(self) -> None:
        super().__init__('servo_driver')
        values = declare_parameters(self, PARAMETERS)
        self.robot = servo_robot_from_params(values, load_robot_config(values['robot']))
        self._rate_hz = values['rate_hz']
        self._torque_off_on_exit = values['torque_off_on_exit']
        self._hardware_id = ' '.join(values['ports'])
        follower = self.robot.mode is Mode.FOLLOWER
        try:
            self.robot.start(time.monotonic())
        except Exception:
            self.robot.stop(torque_off=follower and self._torque_off_on_exit)
            raise
        topic = 'joint_states' if follower else 'leader/joint_states'
        self._state_pub = self.create_publisher(JointState, topic, STATE_QOS)
        self._diag_pub = self.create_publisher(DiagnosticArray, 'diagnostics', STATE_QOS)
        if follower:
            self.create_subscription(JointState, 'joint_command', self._on_command, STATE_QOS)
        self.create_timer(1.0, self._publish_diagnostics)
        self._stop = threading.Event()
        self._in_fault = False
        self.start_worker(self._bus_loop, self._stop.set, 'servo-bus', join_timeout=2.0)
        self.get_logger().info(
            f'{self.robot.mode.value} {values["robot"]}: {len(self.robot.names)} joints on '
            f'{self._hardware_id} at {self._rate_hz:g} Hz -> {topic}'
        )

    def destroy_node(self) -> None:
        super().destroy_node()  # joins the bus thread first
        torque_off = self.robot.mode is Mode.FOLLOWER and self._torque_off_on_exit
        self.robot.stop(torque_off=torque_off)

    def _on_command(self, msg: JointState) -> None:
        try:
            self.robot.command(list(msg.name), list(msg.position))
        except TargetRejectedError as exc:
            self.get_logger().warning(
                f'rejected joint_command: {exc}; holding the last valid targets',
                throttle_duration_sec=1.0,
            )

    def _bus_loop(self) -> None:
        period = 1.0 / self._rate_hz
        deadline = time.monotonic()
        try:
            while not self._stop.is_set():
                deadline += period
                delay = deadline - time.monotonic()
                if delay > 0:
                    self._stop.wait(delay)
                elif delay < -period:  # a slow cycle (bus timeouts): skip, don't burst
                    deadline = time.monotonic()
                positions = self.robot.cycle(time.monotonic())
                if positions is None or not self.context.ok():
                    continue
                msg = JointState(name=list(positions), position=list(positions.values()))
                msg.header.stamp = self.get_clock().now().to_msg()
                self._state_pub.publish(msg)
        except Exception as exc:  # a dead bus thread must not leave a silent node
            if self.context.ok():
                self.request_exit(1, f'servo bus loop failed: {type(exc).__name__}: {exc}')

    def _publish_diagnostics(self) -> None:
        health = self.robot.health(time.monotonic())
        if health.level is Level.ERROR:
            self.get_logger().error(health.message, throttle_duration_sec=5.0)
        elif self._in_fault:
            self.get_logger().info('servo bus answering again')
        self._in_fault = health.level is Level.ERROR
        self._diag_pub.publish(diagnostic_array(self, health, 'servo bus', self._hardware_id))


def main(args: list[str] | None = None) -> int:
    return run_node(DriverNode, args)


if __name__ == '__main__':
    raise SystemExit(main())
