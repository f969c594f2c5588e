"""Recorder node: joint_states, joint_command and camera images into a LeRobotDataset v3.0.

Services recorder/start_episode (the instruction; empty: the latest on vla/instruction) and
recorder/stop_episode (keep or discard). Thin ROS adapter over vla_teleop.recorder.
"""

from __future__ import annotations

from pathlib import Path

from diagnostic_msgs.msg import DiagnosticArray
from sensor_msgs.msg import Image
from sensor_msgs.msg import JointState
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
from vla_msgs.srv import StartEpisode
from vla_msgs.srv import StopEpisode
from vla_perception.image_conversion import image_to_numpy
from vla_perception.image_conversion import to_rgb8
from vla_teleop.dataset import DatasetError
from vla_teleop.recorder import PARAMETERS
from vla_teleop.recorder import Recorder


class RecorderNode(VlaNode):
    def __init__(self) -> None:
        super().__init__('recorder')
        values = declare_parameters(self, PARAMETERS)
        robot = load_robot_config(values['robot'])
        cameras = [c for c in values['cameras'] if c] or list(robot.get('cameras') or {})
        root = Path(values['dataset_dir'] or f'data/{values["robot"]}')
        configured = robot.get('cameras') or {}
        self._sizes = {
            camera: (
                values['height'] or (configured.get(camera) or {}).get('height', 480),
                values['width'] or (configured.get(camera) or {}).get('width', 640),
            )
            for camera in cameras
        }
        try:
            self.recorder = Recorder(
                root,
                robot,
                cameras,
                self._sizes,
                values['stall_timeout_s'],
                values['latency_s'],
                values['min_free_mb'],
            )
        except (DatasetError, OSError) as exc:  # e.g. a dataset_dir that cannot be written
            raise ConfigError(str(exc)) from None
        self._instruction = ''
        self._bad_images = 0
        self.create_subscription(JointState, 'joint_states', self._on_state, STATE_QOS)
        self.create_subscription(JointState, 'joint_command', self._on_command, STATE_QOS)
        self.create_subscription(String, 'vla/instruction', self._on_instruction, LATCHED_QOS)
        for camera in cameras:
            self.create_subscription(
                Image,
                f'camera/{camera}/image_raw',
                lambda msg, camera=camera: self._on_image(camera, msg),
                IMAGE_QOS,
            )
        self.create_service(StartEpisode, 'recorder/start_episode', self._on_start)
        self.create_service(StopEpisode, 'recorder/stop_episode', self._on_stop)
        self._diag_pub = self.create_publisher(DiagnosticArray, 'diagnostics', STATE_QOS)
        self.create_timer(1.0 / self.recorder.fps, self._tick)
        self.create_timer(1.0, self._publish_diagnostics)
        self.get_logger().info(
            f'recording {values["robot"]} at {self.recorder.fps} fps into {root.resolve()} '
            f'({self.recorder.writer.total_episodes} episodes there), cameras {cameras}'
        )

    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _stamp(self, msg) -> float:
        """Capture time of a message; its arrival when the sender left it unstamped."""
        stamp = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
        return stamp if stamp > 0 else self._now()

    def _on_state(self, msg: JointState) -> None:
        self.recorder.on_state(msg.name, msg.position, self._stamp(msg))

    def _on_command(self, msg: JointState) -> None:
        self.recorder.on_action(msg.name, msg.position, self._stamp(msg))

    def _on_instruction(self, msg: String) -> None:
        self._instruction = msg.data

    def _on_image(self, camera: str, msg: Image) -> None:
        try:
            rgb = to_rgb8(image_to_numpy(msg), msg.encoding)
        except ValueError as exc:
            self._bad_images += 1
            self.get_logger().error(f'camera {camera}: {exc}', throttle_duration_sec=2.0)
            return
        height, width = self._sizes[camera]
        if rgb.shape[:2] != (height, width):
            self._bad_images += 1
            self.get_logger().error(
                f'camera {camera}: {rgb.shape[1]}x{rgb.shape[0]} images, the dataset records '
                f'{width}x{height}',
                throttle_duration_sec=2.0,
            )
            return
        self.recorder.on_image(camera, rgb.copy(), self._stamp(msg))

    def _on_start(self, request: StartEpisode.Request, response: StartEpisode.Response):
        task = request.instruction or self._instruction
        try:
            response.episode_index = self.recorder.start(task, self._now())
        except Exception as exc:  # a failed start must answer, not kill the recorder
            response.success, response.message = False, str(exc)
            self.get_logger().error(f'start_episode: {exc}')
            return response
        response.success = True
        response.message = f'recording episode {response.episode_index}: "{task}"'
        self.get_logger().info(response.message)
        return response

    def _on_stop(self, request: StopEpisode.Request, response: StopEpisode.Response):
        if not self.recorder.writer.recording:
            response.success = False
            response.message = self.recorder.last_error or 'no episode is being recorded'
            return response
        try:
            response.episode_index, response.num_frames = self.recorder.stop(request.keep)
        except Exception as exc:  # disk full, encoder error: answer and keep running
            message = str(exc)
            if not message.startswith('episode not saved'):
                message = f'episode not saved: {message}'
            response.success, response.message = False, message
            self.recorder.last_error = message
            self.get_logger().error(response.message)
            return response
        response.success = True
        verb = 'saved' if request.keep else 'discarded'
        response.message = (
            f'{verb} episode {response.episode_index} ({response.num_frames} frames)'
        )
        self.get_logger().info(response.message)
        return response

    def _tick(self) -> None:
        try:
            error = self.recorder.tick(self._now())
        except Exception as exc:  # a frame that cannot be written ends only this episode
            if self.recorder.writer.recording:
                self.recorder.writer.discard_episode()
            error = self.recorder.last_error = f'episode discarded: {exc}'
        if error:
            self.get_logger().error(error)

    def _publish_diagnostics(self) -> None:
        recorder = self.recorder
        counters = recorder.counters
        values = {
            'recording': str(recorder.writer.recording),
            'episodes_saved': str(recorder.writer.total_episodes),
            'frames': str(counters.frames),
            'repeated_frames': ' '.join(f'{c}={n}' for c, n in counters.repeated.items()),
            'bad_images': str(self._bad_images),
            'last_error': recorder.last_error,
            'disk_free_mb': f'{recorder.free_mb():.1f}',
        }
        missing = recorder.missing(self._now())
        disk = '' if recorder.writer.recording else recorder.disk_problem()
        if disk:
            health = Health(Level.ERROR, disk, values)
        elif recorder.last_error and not recorder.writer.recording:
            health = Health(Level.WARN, recorder.last_error, values)
        elif missing:
            health = Health(Level.WARN, f'no recent data from {", ".join(missing)}', values)
        else:
            health = Health(
                Level.OK, 'recording' if recorder.writer.recording else 'ready', values
            )
        self._diag_pub.publish(diagnostic_array(self, health, 'recorder', 'dataset'))


def main(args: list[str] | None = None) -> int:
    return run_node(RecorderNode, args)


if __name__ == '__main__':
    raise SystemExit(main())
