import itertools
import threading

import cv2
import numpy as np
import pytest

from vla_common.diagnostics import Level
from vla_common.errors import ConfigError
from vla_common.errors import DeviceError
from vla_common.params import resolve
from vla_perception.camera import PARAMETERS
from vla_perception.camera import Backoff
from vla_perception.camera import CameraConfig
from vla_perception.camera import CameraMonitor
from vla_perception.camera import CaptureLoop
from vla_perception.camera import SourceKind
from vla_perception.sources import EndOfStream
from vla_perception.sources import FrameReadError
from vla_perception.sources import FrameSource
from vla_perception.sources import TestPatternSource
from vla_perception.sources import V4L2Source
from vla_perception.sources import VideoFileSource
from vla_perception.sources import make_source


def write_video(path, frames, fps=30):
    """Write RGB frames to an mp4 with OpenCV (a real encoded file)."""
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*'mp4v'), fps, (width, height))
    assert writer.isOpened()
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def distinct_frames(count, height=48, width=64):
    return [np.full((height, width, 3), 20 + 20 * i, np.uint8) for i in range(count)]


# --- configuration -----------------------------------------------------------------------------


def test_parameter_table_defaults_build_a_valid_config():
    config = CameraConfig.from_params(resolve(PARAMETERS, {}))
    assert config.source is SourceKind.TEST_PATTERN
    assert config.frame_id == 'camera_optical_frame'
    assert config.period == pytest.approx(1 / 30)


def test_table_and_dataclass_defaults_agree():
    defaults = CameraConfig()
    for param in PARAMETERS:
        expected = getattr(defaults, param.name)
        expected = expected.value if isinstance(expected, SourceKind) else expected
        if param.name != 'frame_id':
            assert expected == param.default, param.name


@pytest.mark.parametrize(
    ('overrides', 'message'),
    [
        ({'fps': 0.0}, 'fps must be > 0'),
        ({'fps': -5.0}, 'fps must be > 0'),
        ({'fps': float('nan')}, 'fps must be > 0'),
        ({'source': 'gopro'}, "unknown camera source 'gopro'; allowed: v4l2, video_file"),
        ({'source': 'video_file'}, 'needs the parameter path'),
        ({'width': 0}, 'width and height must be in 1..8192'),
        ({'name': 'front cam'}, 'letters, digits and _'),
        ({'name': '0cam'}, 'not starting with a digit'),
        ({'width': 100000}, 'width and height must be in 1..8192'),
        ({'horizontal_fov_deg': 180.0}, 'horizontal_fov_deg'),
    ],
)
def test_bad_configs_fail_with_a_clear_message(overrides, message):
    with pytest.raises(ConfigError, match=message):
        CameraConfig(**overrides)


def test_intrinsics_from_field_of_view():
    fx, fy, cx, cy = CameraConfig(width=640, height=480, horizontal_fov_deg=90.0).intrinsics()
    assert fx == pytest.approx(320.0)
    assert fy == fx
    assert (cx, cy) == (319.5, 239.5)


# --- monitor and backoff -----------------------------------------------------------------------


def test_monitor_reports_ok_then_stale_then_repeated():
    config = CameraConfig(fps=10.0, stale_timeout_s=1.0)
    monitor = CameraMonitor(config, now=0.0)
    for i in range(10):
        monitor.record_published(0.1 * (i + 1))
    health = monitor.status(1.0)
    assert health.level is Level.OK
    assert health.values['fps_measured'] == '10.0'
    health = monitor.status(2.5)  # nothing new for 1.5 s
    assert health.level is Level.ERROR
    assert 'stale' in health.message
    assert 'device timeout' in health.message
    monitor.record_published(2.6)
    monitor.record_repeated()
    health = monitor.status(2.7)
    assert health.level is Level.WARN
    assert health.values['repeated_frames_dropped'] == '1'


def test_monitor_warns_on_low_rate():
    monitor = CameraMonitor(CameraConfig(fps=30.0), now=0.0)
    for i in range(10):
        monitor.record_published(0.1 * i)
    health = monitor.status(1.0)
    assert health.level is Level.WARN
    assert 'low rate' in health.message


def test_backoff_doubles_up_to_the_maximum_and_resets():
    backoff = Backoff(initial=0.5, maximum=3.0)
    assert [backoff.next_delay() for _ in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    backoff.reset()
    assert backoff.next_delay() == 0.5


# --- sources -----------------------------------------------------------------------------------


def test_test_pattern_frames_have_the_configured_size_and_all_differ():
    source = TestPatternSource(CameraConfig(width=160, height=120))
    source.open()
    frames = [source.read() for _ in range(50)]
    assert all(f.shape == (120, 160, 3) and f.dtype == np.uint8 for f in frames)
    assert all(not np.array_equal(a, b) for a, b in itertools.pairwise(frames))


def test_video_file_plays_once_then_ends(tmp_path):
    frames = distinct_frames(5)
    path = write_video(tmp_path / 'clip.mp4', frames)
    source = make_source(
        CameraConfig(source='video_file', path=str(path), loop=False, width=64, height=48)
    )
    source.open()
    decoded = [source.read() for _ in range(5)]
    for got, expected in zip(decoded, frames, strict=True):
        assert np.abs(got.astype(int) - expected).mean() < 8  # lossy codec; frames differ by 20
    with pytest.raises(EndOfStream):
        source.read()
    source.close()


def test_video_file_loops_and_is_resized(tmp_path):
    path = write_video(tmp_path / 'clip.mp4', distinct_frames(3))
    source = VideoFileSource(
        CameraConfig(source='video_file', path=str(path), width=32, height=24)
    )
    source.open()
    frames = [source.read() for _ in range(7)]
    assert all(f.shape == (24, 32, 3) for f in frames)
    np.testing.assert_allclose(frames[3].mean(), frames[0].mean(), atol=2)


def test_missing_and_corrupt_video_files_are_device_errors(tmp_path):
    with pytest.raises(DeviceError, match='video file not found'):
        VideoFileSource(CameraConfig(source='video_file', path=str(tmp_path / 'no.mp4'))).open()
    corrupt = tmp_path / 'corrupt.mp4'
    corrupt.write_bytes(b'this is not a video' * 100)
    with pytest.raises(DeviceError, match='cannot decode'):
        VideoFileSource(CameraConfig(source='video_file', path=str(corrupt))).open()


def test_unknown_v4l2_device_is_a_device_error():
    with pytest.raises(DeviceError, match="camera device '/dev/video_nonexistent' does not exist"):
        V4L2Source(CameraConfig(source='v4l2', device='/dev/video_nonexistent')).open()


# --- capture loop ------------------------------------------------------------------------------


class ScriptedSource(FrameSource):
    """Plays a script of frames and failures; counts opens. For testing the loop's decisions."""

    reopen_when_frozen = True

    def __init__(self, config, script, fail_opens=0):
        super().__init__(config)
        self.script = list(script)
        self.opens = 0
        self.fail_opens = fail_opens

    def open(self):
        self.opens += 1
        if self.opens > 1 and self.fail_opens:
            self.fail_opens -= 1
            raise DeviceError('still unplugged')

    def read(self):
        if not self.script:
            raise EndOfStream('script')
        item = self.script.pop(0)
        if isinstance(item, Exception):
            raise item
        return item


def run_loop(config, source, clock=None):
    published, ended = [], threading.Event()
    kwargs = {'clock': clock} if clock else {}
    errors = []
    loop = CaptureLoop(config, source, published.append, ended.set, errors.append, **kwargs)
    loop._backoff = Backoff(initial=0.001, maximum=0.001)  # no real waiting in tests
    loop.open()
    thread = threading.Thread(target=loop.run)
    thread.start()
    assert ended.wait(5.0), f'loop did not reach the end of the script: {errors}'
    thread.join(5.0)
    return loop, published


def test_loop_drops_repeated_frames_and_publishes_only_new_ones():
    a, b = distinct_frames(2)
    config = CameraConfig(fps=1000.0, width=64, height=48)
    loop, published = run_loop(config, ScriptedSource(config, [a, a.copy(), a.copy(), b, b]))
    assert len(published) == 2
    assert loop.monitor.repeated == 3


def test_loop_reopens_after_consecutive_read_failures():
    a, b = distinct_frames(2)
    config = CameraConfig(fps=1000.0, max_read_failures=3, width=64, height=48)
    failures = [FrameReadError('unplugged')] * 3
    source = ScriptedSource(config, [a, *failures, b], fail_opens=2)
    loop, published = run_loop(config, source)
    assert len(published) == 2
    assert source.opens == 4  # first open + 2 failed reopens + the one that worked
    assert loop.monitor.reopens == 3
    assert loop.monitor.read_failures >= 3


def test_loop_reopens_a_frozen_source_after_the_stale_timeout():
    a, b = distinct_frames(2)
    now = [0.0]

    def clock():
        now[0] += 0.3  # each call advances 0.3 s: repeats soon exceed the 1 s timeout
        return now[0]

    config = CameraConfig(fps=1000.0, stale_timeout_s=1.0, width=64, height=48)
    source = ScriptedSource(config, [a] + [a.copy() for _ in range(6)] + [b])
    loop, published = run_loop(config, source, clock)
    assert source.opens >= 2
    assert loop.monitor.reopens >= 1
    assert len(published) == 2  # the repeats after the reopen are still dropped


def test_loop_paces_reads_at_the_configured_rate():
    config = CameraConfig(fps=50.0, width=64, height=48)
    frames = distinct_frames(11)
    import time

    start = time.monotonic()
    _, published = run_loop(config, ScriptedSource(config, frames))
    elapsed = time.monotonic() - start
    assert len(published) == 11
    assert elapsed >= 10 / 50.0 * 0.9  # 10 periods between 11 frames, never faster


def test_repeated_frames_are_published_when_dropping_is_off():
    a = distinct_frames(1)[0]
    config = CameraConfig(fps=1000.0, width=64, height=48, drop_repeated_frames=False)
    loop, published = run_loop(config, ScriptedSource(config, [a, a.copy(), a.copy()]))
    assert len(published) == 3
    assert loop.monitor.repeated == 0


def test_an_unexpected_error_stops_the_loop_and_is_reported():
    class Broken(ScriptedSource):
        def read(self):
            raise RuntimeError('driver returned a 1-channel frame')

    config = CameraConfig(fps=1000.0)
    errors = []
    loop = CaptureLoop(config, Broken(config, []), lambda f: None, lambda: None, errors.append)
    loop.open()
    thread = threading.Thread(target=loop.run)
    thread.start()
    thread.join(5.0)
    assert not thread.is_alive()
    assert [str(e) for e in errors] == ['driver returned a 1-channel frame']
