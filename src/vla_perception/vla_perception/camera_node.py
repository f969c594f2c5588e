"""Camera node: publishes camera/<name>/image_raw and camera_info, stamped at capture.

Thin ROS adapter over vla_perception.camera: the capture loop runs in its own thread (a
frame is published from there as soon as it is read); a 1 Hz timer publishes diagnostics.
"""

from __future__ import annotations

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from sensor_msgs.msg import CameraInfo
from sensor_msgs.msg import Image

from vla_common.node import VlaNode
from vla_common.node import declare_parameters
from vla_common.node import diagnostic_array
from vla_common.node import pinhole_camera_info
from vla_common.node import run_node
from vla_common.qos import IMAGE_QOS
from vla_common.qos import STATE_QOS
from vla_perception.camera import PARAMETERS
from vla_perception.camera import CameraConfig
from vla_perception.camera import CaptureLoop
from vla_perception.camera import SourceKind
from vla_perception.image_conversion import from_rgb8
from vla_perception.image_conversion import numpy_to_image
from vla_perception.sources import make_source


class CameraNode(VlaNode):
    def __init__(self) -> None:
        super().__init__('camera')
        self.config = CameraConfig.from_params(declare_parameters(self, PARAMETERS))
        topic = f'camera/{self.config.name}'
        self._image_pub = self.create_publisher(Image, f'{topic}/image_raw', IMAGE_QOS)
        self._info_pub = self.create_publisher(CameraInfo, f'{topic}/camera_info', STATE_QOS)
        self._diag_pub = self.create_publisher(DiagnosticArray, 'diagnostics', STATE_QOS)
        self._camera_info = self._make_camera_info()
        self._loop = CaptureLoop(
            self.config,
            make_source(self.config),
            self._publish_frame,
            self._on_end,
            self._on_capture_error,
        )
        self._loop.open()  # raises DeviceError: the node exits with a clear line
        self.start_worker(self._loop.run, self._loop.stop, 'capture', join_timeout=2.0)
        self.create_timer(1.0, self._publish_diagnostics)
        self.get_logger().info(
            f'publishing {topic}/image_raw {self.config.width}x{self.config.height} '
            f'{self.config.encoding} at '
            f'{self.config.fps:g} fps from {self.config.source.value}'
        )

    def _publish_frame(self, frame: np.ndarray) -> None:
        stamp = self.get_clock().now().to_msg()  # right after the read: the capture time
        encoding = self.config.encoding
        image = numpy_to_image(from_rgb8(frame, encoding), encoding, Image())
        image.header.stamp = stamp
        image.header.frame_id = self.config.frame_id
        try:
            self._image_pub.publish(image)
            self._camera_info.header.stamp = stamp
            self._info_pub.publish(self._camera_info)
        except Exception:  # rclpy raises RCLError once the context is shut down
            if self.context.ok():
                raise
            self._loop.stop()  # Ctrl-C shut ROS down while this frame was in flight

    def _make_camera_info(self) -> CameraInfo:
        config = self.config
        return pinhole_camera_info(
            config.width, config.height, config.intrinsics(), config.frame_id
        )

    def _publish_diagnostics(self) -> None:
        health = self._loop.monitor.status(self._loop.clock())
        what = f'camera {self.config.name}'
        self._diag_pub.publish(diagnostic_array(self, health, what, self._hardware_id()))

    def _hardware_id(self) -> str:
        if self.config.source is SourceKind.V4L2:
            return self.config.device
        return self.config.path or self.config.source.value

    def _on_capture_error(self, exc: Exception) -> None:
        self.request_exit(1, f'capture failed: {type(exc).__name__}: {exc}')

    def _on_end(self) -> None:
        self.request_exit(0, f'video file {self.config.path!r} ended')


def main(args: list[str] | None = None) -> int:
    return run_node(CameraNode, args)


if __name__ == '__main__':
    raise SystemExit(main())
