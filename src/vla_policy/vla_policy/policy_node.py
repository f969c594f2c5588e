"""Policy node: cameras + joint_states + instruction in, vla/action_chunk out.

Inference runs in a worker thread every `replan_period_s` (node clock, so sim time works), on a
snapshot of the latest image per camera and the latest joint state. Stale or bad inputs publish
nothing: the error goes to the log and diagnostics, and the controller holds the robot still.
The `vla/run_instruction` action runs one instruction until sim/success, timeout or cancel.
"""

from __future__ import annotations

import threading

import numpy as np
import torch
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.action import ActionServer
from rclpy.action import CancelResponse
from rclpy.duration import Duration
from rclpy.task import Future
from rclpy.time import Time
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
from vla_common.node import run_node
from vla_common.qos import IMAGE_QOS
from vla_common.qos import LATCHED_QOS
from vla_common.qos import STATE_QOS
from vla_common.robot_config import load_robot_config
from vla_msgs.action import RunInstruction
from vla_msgs.msg import ActionChunk
from vla_perception.image_conversion import image_to_numpy
from vla_perception.image_conversion import to_rgb8
from vla_policy.checkpoint import check_robot
from vla_policy.checkpoint import load_checkpoint
from vla_policy.config import preset_config
from vla_policy.inference import ObservationError
from vla_policy.inference import PolicyRunner
from vla_policy.model import VlaModel
from vla_policy.normalization import Normalizer
from vla_policy.policy import COLOUR_ENCODINGS
from vla_policy.policy import PARAMETERS
from vla_policy.policy import ObservationBuffer
from vla_policy.policy import align_previous
from vla_policy.policy import delay_steps


def _seconds(stamp) -> float:
    return stamp.sec + stamp.nanosec * 1e-9


class PolicyNode(VlaNode):
    def __init__(self) -> None:
        super().__init__('policy')
        p = self.params = declare_parameters(self, PARAMETERS)
        robot = load_robot_config(p['robot'])
        if p['threads'] > 0:
            torch.set_num_threads(p['threads'])
        device = p['device']
        if device == 'auto':
            device = 'cuda' if torch.cuda.is_available() else 'cpu'
        elif device.startswith('cuda') and not torch.cuda.is_available():
            raise ConfigError(f'device {device!r}: this machine has no CUDA GPU')
        if p['checkpoint']:
            model, normalizer = load_checkpoint(p['checkpoint'], robot, device)
            source = p['checkpoint']
        else:
            torch.manual_seed(p['seed'])
            config = preset_config(p['preset'], robot)
            check_robot(config, robot)
            model = VlaModel(config).to(device).eval()
            normalizer = Normalizer.identity(config.action_dim)
            source = f'UNTRAINED {p["preset"]} model (no checkpoint given)'
        self.runner = PolicyRunner(model, normalizer, seed=p['seed'])
        c = self.config = model.config
        self.step_s = 1.0 / c.fps
        self.buffer = ObservationBuffer(
            c.cameras, c.joint_names, p['max_image_age_s'], p['max_state_age_s']
        )
        self._sequence = 0
        self._previous: tuple[np.ndarray, float] | None = None
        self._latency_s = 0.0
        self._last_error = ''
        self._input_errors = 0
        # Input (camera or joint_states) -> why its latest message was refused. Until a good
        # one comes, no chunk is computed from the older messages still in the buffer.
        self._refused: dict[str, str] = {}
        self._chunks = 0
        self._success = False
        self._goal: tuple[object, Future, float, float] | None = None
        self._goal_lock = threading.Lock()
        self._wake = threading.Event()

        self.chunk_pub = self.create_publisher(ActionChunk, 'vla/action_chunk', STATE_QOS)
        self._diag_pub = self.create_publisher(DiagnosticArray, 'diagnostics', STATE_QOS)
        self.create_subscription(JointState, 'joint_states', self._on_state, STATE_QOS)
        self.create_subscription(String, 'vla/instruction', self._on_instruction, LATCHED_QOS)
        self.create_subscription(Bool, 'sim/success', self._on_success, STATE_QOS)
        for camera in c.cameras:
            self.create_subscription(
                Image,
                f'camera/{camera}/image_raw',
                lambda msg, camera=camera: self._on_image(camera, msg),
                IMAGE_QOS,
            )
        self._action_server = ActionServer(
            self,
            RunInstruction,
            'vla/run_instruction',
            execute_callback=self._execute,
            cancel_callback=lambda _: CancelResponse.ACCEPT,
        )
        self.create_timer(1.0, self._publish_diagnostics)
        self.start_worker(self._run, self._wake.set, 'policy-inference')
        self.get_logger().info(
            f'policy {source} on {device}: {c.robot} joints {c.joint_names}, cameras '
            f'{c.cameras}, H={c.chunk_length} at {c.fps:g} fps, replan every '
            f'{p["replan_period_s"]} s'
        )

    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    # ----- inputs -----

    def _input_error(self, what: str) -> None:
        self._input_errors += 1
        self._last_error = what
        self.get_logger().error(what, throttle_duration_sec=2.0)

    def _refuse(self, source: str, what: str) -> None:
        self._refused[source] = what
        self._input_error(what)

    def _on_image(self, camera: str, msg: Image) -> None:
        source = f'camera {camera}'
        if msg.encoding not in COLOUR_ENCODINGS:
            self._refuse(
                source,
                f'{source}: encoding {msg.encoding!r}, the policy needs colour images '
                f'({", ".join(COLOUR_ENCODINGS)})',
            )
            return
        try:
            rgb = to_rgb8(image_to_numpy(msg), msg.encoding)
        except ValueError as exc:
            self._refuse(source, f'{source}: {exc}')
            return
        # A view of the message: copied (and resized) only when a chunk is computed.
        self.buffer.on_image(camera, rgb, _seconds(msg.header.stamp) or self._now())
        self._refused.pop(source, None)

    def _on_state(self, msg: JointState) -> None:
        try:
            stamp = _seconds(msg.header.stamp) or self._now()  # unstamped: its arrival
            self.buffer.on_state(list(msg.name), list(msg.position), stamp)
        except ObservationError as exc:
            self._refuse('joint_states', str(exc))
            return
        self._refused.pop('joint_states', None)

    def _on_instruction(self, msg: String) -> None:
        self.buffer.instruction = msg.data
        self._previous = None
        self.get_logger().info(f'instruction: "{msg.data}"')

    def _on_success(self, msg: Bool) -> None:
        self._success = msg.data

    # ----- inference -----

    def _run(self) -> None:
        next_time = self._now()
        while not self._wake.is_set():
            if self._now() < next_time:
                self._wake.wait(0.005)
                continue
            next_time = max(next_time + self.params['replan_period_s'], self._now())
            self._check_goal()
            if not self.buffer.instruction.strip():
                self._last_error = ''  # idle, waiting for an instruction: nothing is wrong
                continue
            refused = list(self._refused.values())
            if refused:  # hold still rather than act on what came before the bad message
                self._last_error = refused[0]
                continue
            try:
                self._infer_once()
            except ObservationError as exc:
                self._input_error(f'no chunk: {exc}')
            except Exception as exc:  # a model failure must not kill the node
                self._input_error(f'inference failed: {type(exc).__name__}: {exc}')

    def _infer_once(self) -> None:
        snapshot = self.buffer.snapshot(self._now())
        previous, delay = None, 0
        if self.params['guidance'] and self._previous is not None:
            actions, stamp = self._previous
            previous = align_previous(actions, stamp, self.step_s, snapshot.stamp)
            delay = delay_steps(self._latency_s, self.step_s)
        chunk = self.runner.infer(
            snapshot.images, snapshot.state, snapshot.instruction, previous, delay
        )
        if not np.all(np.isfinite(chunk.actions)):
            raise ObservationError('the model produced non-finite actions')
        self._latency_s = chunk.inference_ms / 1e3
        self._previous = (chunk.actions, snapshot.stamp)
        self._sequence += 1
        msg = ActionChunk(
            sequence=self._sequence,
            joint_names=chunk.joint_names,
            horizon=len(chunk.actions),
            positions=chunk.actions.ravel().tolist(),
            inference_ms=float(chunk.inference_ms),
        )
        msg.header.stamp = Time(nanoseconds=round(snapshot.stamp * 1e9)).to_msg()
        msg.step = Duration(seconds=self.step_s).to_msg()
        self.chunk_pub.publish(msg)
        self._chunks += 1
        self._last_error = ''

    # ----- vla/run_instruction -----

    async def _execute(self, goal_handle) -> RunInstruction.Result:
        """Start the run and wait, without blocking the executor, for the worker to end it."""
        request = goal_handle.request
        timeout = _seconds(request.timeout) or self.params['run_timeout_s']
        if not request.instruction.strip():
            goal_handle.abort()
            return RunInstruction.Result(message='error: the instruction is empty')
        done = Future()
        with self._goal_lock:
            if self._goal is not None:  # a new goal preempts the running one
                preempted = self._now() - self._goal[2]
                self._goal[1].set_result(('preempted by a new goal', False, preempted))
            self._success = False
            self.buffer.instruction = request.instruction
            self._previous = None
            self._goal = (goal_handle, done, self._now(), timeout)
            self._goal_chunks = self._chunks
        message, success, elapsed = await done
        result = RunInstruction.Result(success=success, elapsed_s=elapsed, message=message)
        if message == 'canceled':
            goal_handle.canceled()
        elif success:
            goal_handle.succeed()
        else:
            goal_handle.abort()
        return result

    def _check_goal(self) -> None:
        """Called by the worker each replan period: end the goal on success, timeout, cancel."""
        with self._goal_lock:
            if self._goal is None:
                return
            goal_handle, done, started, timeout = self._goal
            elapsed = self._now() - started
            outcome = None
            if goal_handle.is_cancel_requested:
                outcome = ('canceled', False, elapsed)
            elif self._success:
                outcome = ('success', True, elapsed)
            elif elapsed > timeout:
                outcome = ('timeout', False, elapsed)
            if outcome is None:
                goal_handle.publish_feedback(
                    RunInstruction.Feedback(
                        elapsed_s=elapsed, chunks_executed=self._chunks - self._goal_chunks
                    )
                )
                return
            self._goal = None
            self.buffer.instruction = ''  # the run is over: stop producing chunks
        done.set_result(outcome)

    # ----- diagnostics -----

    def _publish_diagnostics(self) -> None:
        values = {
            'chunks': str(self._chunks),
            'inference_ms': f'{self._latency_s * 1e3:.1f}',
            'input_errors': str(self._input_errors),
            'instruction': self.buffer.instruction,
            'last_error': self._last_error,
        }
        if self._last_error:
            health = Health(Level.ERROR, self._last_error, values)
        elif not self.buffer.instruction:
            health = Health(Level.OK, 'idle: waiting for an instruction', values)
        else:
            health = Health(Level.OK, f'running: "{self.buffer.instruction}"', values)
        self._diag_pub.publish(diagnostic_array(self, health, 'policy', self.config.robot))


def main(args: list[str] | None = None) -> int:
    return run_node(PolicyNode, args)


if __name__ == '__main__':
    raise SystemExit(main())
