"""Frame sources: a V4L2/USB device, a video file, a synthetic moving test pattern.

Every source returns RGB uint8 frames of exactly the configured size. OpenCV is imported only
by the sources that need it.
"""

from __future__ import annotations

import abc
import glob
import os

import numpy as np

from vla_common.errors import DeviceError
from vla_perception.camera import CameraConfig
from vla_perception.camera import SourceKind


class FrameReadError(RuntimeError):
    """A read failed (device unplugged, driver timeout); the caller may reopen the source."""


class EndOfStream(Exception):  # noqa: N818 - a normal end, not an error
    """A video file played once has no more frames."""


class FrameSource(abc.ABC):
    """Produces RGB frames of shape (height, width, 3)."""

    #: True when read() blocks until the device has a frame (the device sets the rate);
    #: False when frames are available at once and the caller must pace reads.
    paced_by_device = False
    #: True when repeating frames mean a stuck device that reopening may fix.
    reopen_when_frozen = False

    def __init__(self, config: CameraConfig):
        self.config = config

    @abc.abstractmethod
    def open(self) -> None:
        """Open the source or raise DeviceError saying why it cannot be opened."""

    @abc.abstractmethod
    def read(self) -> np.ndarray:
        """Return the next frame, or raise FrameReadError / EndOfStream."""

    def close(self) -> None:  # noqa: B027 - sources without resources need no close
        """Release the device or file; safe to call twice."""


class TestPatternSource(FrameSource):
    """Colour bars and a gradient that scroll by a few pixels per frame: every frame differs."""

    __test__ = False  # not a pytest test class despite the name

    def open(self) -> None:
        height, width = self.config.height, self.config.width
        bars = np.array(
            [
                [255, 255, 255],
                [255, 255, 0],
                [0, 255, 255],
                [0, 255, 0],
                [255, 0, 255],
                [255, 0, 0],
                [0, 0, 255],
                [0, 0, 0],
            ],
            dtype=np.uint8,
        )
        columns = bars[(np.arange(2 * width) * len(bars) // width) % len(bars)]
        tile = np.repeat(columns[None, :, :], height, axis=0)
        ramp = (np.arange(height, dtype=np.uint16) * 255 // max(height - 1, 1)).astype(np.uint8)
        tile[height * 3 // 4 :, :, :] = ramp[height * 3 // 4 :, None, None]
        self._tile = tile
        self._offset = 0

    def read(self) -> np.ndarray:
        width = self.config.width
        frame = self._tile[:, self._offset : self._offset + width].copy()
        self._offset = (self._offset + 4) % width
        return frame


class OpenCVSource(FrameSource):
    """A source decoded by an OpenCV VideoCapture (held in `_capture`): BGR in, RGB out."""

    _capture = None

    def close(self) -> None:
        if self._capture is not None:
            self._capture.release()
            self._capture = None

    def _rgb(self, bgr: np.ndarray) -> np.ndarray:
        """RGB at the configured size (a device or file may deliver another one)."""
        import cv2

        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        height, width = self.config.height, self.config.width
        if rgb.shape[0] == height and rgb.shape[1] == width:
            return rgb
        return cv2.resize(rgb, (width, height), interpolation=cv2.INTER_AREA)


class VideoFileSource(OpenCVSource):
    """Frames of a video file decoded by OpenCV (FFmpeg), played once or looping."""

    def open(self) -> None:
        import cv2

        path = self.config.path
        if not os.path.isfile(path):
            raise DeviceError(f'video file not found: {path!r}')
        capture = cv2.VideoCapture(path)
        if not capture.isOpened():
            capture.release()
            raise DeviceError(f'cannot decode video file {path!r} (not a video, or corrupt)')
        self._capture = capture

    def read(self) -> np.ndarray:
        import cv2

        ok, bgr = self._capture.read()
        if not ok and self.config.loop:
            self._capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, bgr = self._capture.read()
        if not ok:
            if self.config.loop:
                raise FrameReadError(f'cannot read a frame from {self.config.path!r}')
            raise EndOfStream(self.config.path)
        return self._rgb(bgr)


class V4L2Source(OpenCVSource):
    """A USB/V4L2 camera through OpenCV; `device` is an index ("0") or a path ("/dev/video0")."""

    paced_by_device = True
    reopen_when_frozen = True

    def open(self) -> None:
        import cv2

        device = self.config.device
        target: int | str = int(device) if device.isdigit() else device
        if isinstance(target, str) and not os.path.exists(target):
            raise DeviceError(f'camera device {device!r} does not exist; {_available_devices()}')
        capture = cv2.VideoCapture(target, cv2.CAP_V4L2)
        if not capture.isOpened():
            capture.release()
            raise DeviceError(f'cannot open camera device {device!r}; {_available_devices()}')
        capture.set(cv2.CAP_PROP_FRAME_WIDTH, self.config.width)
        capture.set(cv2.CAP_PROP_FRAME_HEIGHT, self.config.height)
        capture.set(cv2.CAP_PROP_FPS, self.config.fps)
        capture.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # the newest frame, not a queued old one
        if hasattr(cv2, 'CAP_PROP_READ_TIMEOUT_MSEC'):  # OpenCV >= 4.6: do not block ~10 s
            capture.set(cv2.CAP_PROP_READ_TIMEOUT_MSEC, self.config.stale_timeout_s * 1000)
        self._capture = capture

    def read(self) -> np.ndarray:
        ok, bgr = self._capture.read()
        if not ok or bgr is None:
            raise FrameReadError(f'camera device {self.config.device!r} returned no frame')
        return self._rgb(bgr)


def make_source(config: CameraConfig) -> FrameSource:
    """Return the (unopened) source that `config.source` names."""
    return {
        SourceKind.TEST_PATTERN: TestPatternSource,
        SourceKind.VIDEO_FILE: VideoFileSource,
        SourceKind.V4L2: V4L2Source,
    }[config.source](config)


def _available_devices() -> str:
    devices = sorted(glob.glob('/dev/video*'))
    return f'available: {", ".join(devices)}' if devices else 'no /dev/video* devices found'
