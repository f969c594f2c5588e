"""Camera core: configuration, frame freshness, health, reconnect backoff and the capture loop.

No rclpy: the node gives the loop a `publish(frame)` callback and reads `monitor.status()`.
Time is passed in (monotonic seconds), so every rule here is testable without a clock.
"""

from __future__ import annotations

import enum
import math
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING
from typing import Any

import numpy as np

from vla_common.diagnostics import Health
from vla_common.diagnostics import Level
from vla_common.errors import ConfigError
from vla_common.errors import DeviceError
from vla_common.params import Param
from vla_perception.image_conversion import CAMERA_ENCODINGS

if TYPE_CHECKING:
    from vla_perception.sources import FrameSource


class SourceKind(enum.Enum):
    V4L2 = 'v4l2'
    VIDEO_FILE = 'video_file'
    TEST_PATTERN = 'test_pattern'


PARAMETERS = (
    Param('name', 'camera', 'Camera name: topics are camera/<name>/image_raw and camera_info.'),
    Param('source', 'test_pattern', 'Frame source: v4l2, video_file or test_pattern.'),
    Param('device', '0', 'v4l2: device index ("0") or path ("/dev/video0").'),
    Param('path', '', 'video_file: path of the video.'),
    Param('loop', True, 'video_file: start again at the end; false: exit when it ends.'),
    Param('fps', 30.0, 'Publishing rate in frames per second (> 0).'),
    Param('width', 640, 'Published image width in pixels; other sizes are resized.'),
    Param('height', 480, 'Published image height in pixels.'),
    Param('encoding', 'rgb8', 'Published encoding: rgb8, bgr8 or mono8.'),
    Param('frame_id', '', 'TF frame of the image; empty: <name>_optical_frame.'),
    Param('horizontal_fov_deg', 69.0, 'Horizontal field of view for camera_info (pinhole).'),
    Param('stale_timeout_s', 1.0, 'No new frame for this long: ERROR (and a device is reopened).'),
    Param('drop_repeated_frames', True, 'Never publish a frame identical to the previous one.'),
    Param('max_read_failures', 5, 'Consecutive failed reads before the device is reopened.'),
)


@dataclass(frozen=True)
class CameraConfig:
    """Everything one camera node needs; validated on construction."""

    name: str = 'camera'
    source: SourceKind = SourceKind.TEST_PATTERN
    device: str = '0'
    path: str = ''
    loop: bool = True
    fps: float = 30.0
    width: int = 640
    height: int = 480
    encoding: str = 'rgb8'
    frame_id: str = ''
    horizontal_fov_deg: float = 69.0
    stale_timeout_s: float = 1.0
    drop_repeated_frames: bool = True
    max_read_failures: int = 5

    def __post_init__(self) -> None:
        if isinstance(self.source, str):
            allowed = ', '.join(kind.value for kind in SourceKind)
            try:
                object.__setattr__(self, 'source', SourceKind(self.source))
            except ValueError:
                raise ConfigError(
                    f'unknown camera source {self.source!r}; allowed: {allowed}'
                ) from None
        if not re.fullmatch(r'[A-Za-z_][A-Za-z0-9_]*', self.name):
            raise ConfigError(
                f'camera name {self.name!r}: letters, digits and _, not starting with a digit'
            )
        if not math.isfinite(self.fps) or self.fps <= 0:
            raise ConfigError(f'fps must be > 0, got {self.fps}')
        if not (0 < self.width <= 8192 and 0 < self.height <= 8192):
            raise ConfigError(
                f'width and height must be in 1..8192, got {self.width}x{self.height}'
            )
        if not 0 < self.horizontal_fov_deg < 180:
            raise ConfigError(
                f'horizontal_fov_deg must be in (0, 180), got {self.horizontal_fov_deg}'
            )
        if self.stale_timeout_s <= 0 or self.max_read_failures < 1:
            raise ConfigError('stale_timeout_s must be > 0 and max_read_failures >= 1')
        if self.encoding not in CAMERA_ENCODINGS:
            allowed = ', '.join(CAMERA_ENCODINGS)
            raise ConfigError(f'unsupported encoding {self.encoding!r}; choose one of {allowed}')
        if self.source is SourceKind.VIDEO_FILE and not self.path:
            raise ConfigError('source video_file needs the parameter path')
        if not self.frame_id:
            object.__setattr__(self, 'frame_id', f'{self.name}_optical_frame')

    @classmethod
    def from_params(cls, values: dict[str, Any]) -> CameraConfig:
        """Build from the values of PARAMETERS (as returned by `declare_parameters`)."""
        return cls(**values)

    @property
    def period(self) -> float:
        return 1.0 / self.fps

    def intrinsics(self) -> tuple[float, float, float, float]:
        """Pinhole fx, fy, cx, cy from the horizontal field of view (square pixels)."""
        fx = (self.width / 2.0) / math.tan(math.radians(self.horizontal_fov_deg) / 2.0)
        return fx, fx, (self.width - 1) / 2.0, (self.height - 1) / 2.0


class CameraMonitor:
    """Counts what happens to frames and turns it into a diagnostics status.

    Called from the capture thread (record_*) and the diagnostics timer (status); a lock keeps
    the counters consistent between the two.
    """

    def __init__(self, config: CameraConfig, now: float):
        self._config = config
        self._lock = threading.Lock()
        self.published = 0
        self.repeated = 0
        self.read_failures = 0
        self.reopens = 0
        self.last_error = ''
        self.ended = False
        self._last_new_frame = now
        self._window_start = now
        self._window_published = 0
        self._window_repeated = 0

    def record_published(self, now: float) -> None:
        with self._lock:
            self.published += 1
            self._window_published += 1
            self._last_new_frame = now

    def record_repeated(self) -> None:
        with self._lock:
            self.repeated += 1
            self._window_repeated += 1

    def record_failure(self, error: str) -> None:
        with self._lock:
            self.read_failures += 1
            self.last_error = error

    def record_reopen(self) -> None:
        with self._lock:
            self.reopens += 1

    def frame_age(self, now: float) -> float:
        with self._lock:
            return now - self._last_new_frame

    def status(self, now: float) -> Health:
        """Health over the window since the previous call."""
        with self._lock:
            elapsed = max(now - self._window_start, 1e-9)
            fps = self._window_published / elapsed
            repeated = self._window_repeated
            age = now - self._last_new_frame
            self._window_start, self._window_published, self._window_repeated = now, 0, 0
            values = {
                'fps_target': f'{self._config.fps:.1f}',
                'fps_measured': f'{fps:.1f}',
                'frames_published': str(self.published),
                'repeated_frames_dropped': str(self.repeated),
                'read_failures': str(self.read_failures),
                'reopens': str(self.reopens),
                'last_frame_age_s': f'{age:.3f}',
                'last_error': self.last_error,
            }
        if self.ended:
            return Health(Level.OK, 'video file ended', values)
        if age > self._config.stale_timeout_s:
            why = 'identical frames repeated' if repeated else 'device timeout or lost'
            return Health(Level.ERROR, f'stale: no new frame for {age:.1f} s ({why})', values)
        if repeated:
            return Health(Level.WARN, f'{repeated} repeated frames dropped', values)
        if fps < 0.8 * self._config.fps and elapsed >= 1.0:
            return Health(Level.WARN, f'low rate: {fps:.1f} of {self._config.fps:.1f} fps', values)
        return Health(Level.OK, 'streaming', values)


class Backoff:
    """Exponential delay between reopen attempts: 0.5 s, 1 s, 2 s, ... up to `maximum`."""

    def __init__(self, initial: float = 0.5, maximum: float = 10.0):
        self._initial, self._maximum = initial, maximum
        self._next = initial

    def next_delay(self) -> float:
        delay = self._next
        self._next = min(self._next * 2.0, self._maximum)
        return delay

    def reset(self) -> None:
        self._next = self._initial


class CaptureLoop:
    """Reads frames at the configured rate and hands only new ones to `publish`.

    Frames identical to the previous one are dropped when `drop_repeated_frames` (a camera
    never repeats a frame exactly, sensor noise sees to that, so a repeat is a frozen driver).
    A source that fails `max_read_failures` reads in a row is closed and reopened with backoff,
    and so is a device (`reopen_when_frozen`) that yields no new frame for `stale_timeout_s`.
    Read errors go to the monitor, the end of a video played once to `on_end`, and anything
    unexpected to `on_error`, after which the loop stops: it never dies silently.
    """

    def __init__(
        self,
        config: CameraConfig,
        source: FrameSource,
        publish: Callable[[np.ndarray], None],
        on_end: Callable[[], None],
        on_error: Callable[[Exception], None],
        clock: Callable[[], float] = time.monotonic,
    ):
        self.config = config
        self.source = source
        self.monitor = CameraMonitor(config, clock())
        self._publish = publish
        self._on_end = on_end
        self._on_error = on_error
        self.clock = clock
        self._stop = threading.Event()
        self._previous: np.ndarray | None = None
        self._is_open = False
        self._backoff = Backoff()

    def open(self) -> None:
        """First open, in the caller's thread: a missing device is a start-up error."""
        self.source.open()
        self._is_open = True

    def stop(self) -> None:
        self._stop.set()

    def run(self) -> None:
        from vla_perception.sources import EndOfStream
        from vla_perception.sources import FrameReadError

        deadline = self.clock()
        failures = 0
        try:
            while not self._stop.is_set():
                if not self._is_open and not self._reopen():
                    continue
                if not self.source.paced_by_device:
                    deadline = self._wait_for(deadline)
                try:
                    frame = self.source.read()
                except EndOfStream:
                    self.monitor.ended = True
                    self._on_end()
                    return
                except FrameReadError as exc:
                    failures += 1
                    self.monitor.record_failure(str(exc))
                    if failures >= self.config.max_read_failures:
                        self._close(f'{failures} failed reads in a row')
                        failures = 0
                    continue
                failures = 0
                now = self.clock()
                if self._is_repeat(frame):
                    self.monitor.record_repeated()
                    stale = self.monitor.frame_age(now) > self.config.stale_timeout_s
                    if stale and self.source.reopen_when_frozen:
                        self._close('frozen: identical frames')
                    continue
                self._previous = frame
                self._publish(frame)
                self.monitor.record_published(now)
                self._backoff.reset()
        except Exception as exc:  # a bug or an unexpected frame must not end the thread silently
            self._on_error(exc)
        finally:
            self.source.close()

    def _is_repeat(self, frame: np.ndarray) -> bool:
        if not self.config.drop_repeated_frames or self._previous is None:
            return False
        return frame.shape == self._previous.shape and np.array_equal(frame, self._previous)

    def _wait_for(self, deadline: float) -> float:
        """Sleep until `deadline`; return the next one. After a stall, skip instead of bursting."""
        delay = deadline - self.clock()
        if delay > 0:
            self._stop.wait(delay)
        next_deadline = deadline + self.config.period
        if self.clock() - next_deadline > self.config.period:
            next_deadline = self.clock() + self.config.period
        return next_deadline

    def _close(self, why: str) -> None:
        self.monitor.record_failure(f'closed: {why}')
        self.source.close()
        self._is_open = False  # keep _previous: a reopened device repeating it is still frozen

    def _reopen(self) -> bool:
        if self._stop.wait(self._backoff.next_delay()):
            return False
        self.monitor.record_reopen()
        try:
            self.source.open()
        except DeviceError as exc:
            self.monitor.record_failure(str(exc))
            return False
        self._is_open = True
        return True
