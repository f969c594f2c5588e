"""The camera node as a real process, observed over DDS."""

import itertools
import time

import cv2
import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from sensor_msgs.msg import CameraInfo
from sensor_msgs.msg import Image

from vla_common.qos import IMAGE_QOS
from vla_common.qos import STATE_QOS
from vla_perception.image_conversion import image_to_numpy

pytestmark = pytest.mark.ros


def write_video(path, frames, fps):
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*'mp4v'), fps, (width, height))
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return str(path)


def stamp_seconds(msg):
    return msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9


def statuses(diagnostics):
    return [s for array in list(diagnostics) for s in array.status]


def test_test_pattern_images_and_camera_info(ros, launch_node):
    images = ros.subscribe(Image, 'camera/front/image_raw', IMAGE_QOS)
    infos = ros.subscribe(CameraInfo, 'camera/front/camera_info', STATE_QOS)
    diagnostics = ros.subscribe(DiagnosticArray, 'diagnostics', STATE_QOS)
    launch_node(
        'vla_perception',
        'camera_node',
        name='cam_front',
        params={'name': 'front', 'fps': 20.0, 'width': 320, 'height': 240},
    )
    ros.wait_for(lambda: len(images) >= 20, timeout=20, what='20 images')
    ros.wait_for(
        lambda: any(s.message == 'streaming' for s in statuses(diagnostics)),
        timeout=5,
        what='an OK diagnostics status',
    )

    first = images[0]
    assert (first.height, first.width, first.encoding) == (240, 320, 'rgb8')
    assert first.header.frame_id == 'front_optical_frame'
    assert image_to_numpy(first).shape == (240, 320, 3)
    stamps = [stamp_seconds(m) for m in list(images)[:20]]
    assert all(b > a for a, b in itertools.pairwise(stamps)), 'stamps must increase'
    periods = np.diff(stamps)
    assert np.median(periods) == pytest.approx(1 / 20, rel=0.2)
    latencies = np.array(images.arrival[:20]) - np.array(stamps)
    assert 0 <= np.median(latencies) < 0.5, 'stamped at capture, shortly before arrival'

    info = infos[-1]
    assert (info.width, info.height) == (320, 240)
    assert info.k[0] > 0
    assert info.k[2] == pytest.approx(159.5)
    status = next(s for s in statuses(diagnostics) if s.message == 'streaming')
    assert status.level == b'\x00'
    assert 'camera front' in status.name
    values = {kv.key: kv.value for kv in status.values}
    assert float(values['fps_measured']) > 10


def test_video_file_frames_are_published_in_order_and_loop(ros, launch_node, tmp_path):
    colours = [np.full((48, 64, 3), 30 + 40 * i, np.uint8) for i in range(5)]
    path = write_video(tmp_path / 'five.mp4', colours, fps=20)
    images = ros.subscribe(Image, 'camera/clip/image_raw', IMAGE_QOS)
    launch_node(
        'vla_perception',
        'camera_node',
        name='cam_clip',
        params={
            'name': 'clip',
            'source': 'video_file',
            'path': path,
            'fps': 20.0,
            'width': 64,
            'height': 48,
        },
    )
    ros.wait_for(lambda: len(images) >= 15, timeout=20, what='15 frames of the looping video')
    means = [image_to_numpy(m).mean() for m in list(images)[:15]]
    indices = [int(np.argmin([abs(m - c.mean()) for c in colours])) for m in means]
    for mean, index in zip(means, indices, strict=True):
        assert abs(mean - colours[index].mean()) < 8
    steps = [(b - a) % 5 for a, b in itertools.pairwise(indices)]
    assert steps.count(1) >= len(steps) - 1, f'frames out of order: {indices}'
    assert 4 in indices
    assert 0 in indices[indices.index(4) :], 'the video must loop'


def test_video_played_once_exits_cleanly(launch_node, tmp_path):
    frames = [np.full((48, 64, 3), 10 * i, np.uint8) for i in range(6)]
    path = write_video(tmp_path / 'six.mp4', frames, fps=30)
    node = launch_node(
        'vla_perception',
        'camera_node',
        name='cam_once',
        params={
            'name': 'once',
            'source': 'video_file',
            'path': path,
            'loop': False,
            'fps': 30.0,
            'width': 64,
            'height': 48,
        },
    )
    assert node.wait_exit(timeout=20) == 0
    assert 'ended' in node.output


def test_frozen_stream_is_not_republished_and_reported(ros, launch_node, tmp_path):
    still = [np.full((48, 64, 3), 128, np.uint8)] * 10
    path = write_video(tmp_path / 'still.mp4', still, fps=30)
    images = ros.subscribe(Image, 'camera/still/image_raw', IMAGE_QOS)
    diagnostics = ros.subscribe(DiagnosticArray, 'diagnostics', STATE_QOS)
    launch_node(
        'vla_perception',
        'camera_node',
        name='cam_still',
        params={
            'name': 'still',
            'source': 'video_file',
            'path': path,
            'fps': 30.0,
            'width': 64,
            'height': 48,
            'stale_timeout_s': 0.5,
        },
    )

    def error_status():
        return next((s for s in statuses(diagnostics) if s.level == b'\x02'), None)

    ros.wait_for(lambda: error_status() is not None, timeout=20, what='an ERROR status')
    status = error_status()
    assert 'stale' in status.message
    assert 'identical frames' in status.message
    values = {kv.key: kv.value for kv in status.values}
    assert int(values['repeated_frames_dropped']) > 5
    assert int(values['frames_published']) == 1
    time.sleep(0.5)
    assert len(images) <= 1, 'a frozen frame must never be republished'


@pytest.mark.parametrize(
    ('params', 'code', 'message'),
    [
        ({'fps': 0.0}, 2, 'fps must be > 0, got 0.0'),
        ({'fps': 'fast'}, 2, "parameter 'fps' must be float"),
        ({'fsp': 30.0}, 2, 'unknown parameter(s) fsp'),
        ({'encoding': 'yuv422'}, 2, "unsupported encoding 'yuv422'; choose one of rgb8, bgr8"),
        ({'source': 'video_file', 'path': '/nonexistent/clip.mp4'}, 3, 'video file not found'),
        ({'source': 'v4l2', 'device': '/dev/video_nonexistent'}, 3, 'does not exist'),
    ],
)
def test_bad_input_exits_with_one_clear_line(launch_node, params, code, message):
    node = launch_node('vla_perception', 'camera_node', name='cam_bad', params=params)
    node.expect_one_error_line(code, message)


def test_malformed_parameter_file_exits_with_one_clear_line(launch_node, tmp_path):
    bad = tmp_path / 'bad.yaml'
    bad.write_text('/**:\n  ros__parameters:\n    fps: [30.0\n')
    node = launch_node('vla_perception', 'camera_node', name='cam_bad', params_file=bad)
    assert node.wait_exit(timeout=20) == 2
    expected = "camera_node: error: cannot start ROS: failed to initialize rcl: Couldn't parse"
    assert expected in node.output
    assert 'Traceback' not in node.output


def test_published_encoding_is_configurable(ros, launch_node):
    images = ros.subscribe(Image, 'camera/grey/image_raw', IMAGE_QOS)
    launch_node(
        'vla_perception',
        'camera_node',
        name='cam_grey',
        params={'name': 'grey', 'encoding': 'mono8', 'width': 80, 'height': 60},
    )
    ros.wait_for(lambda: len(images) >= 2, timeout=20, what='2 mono8 images')
    assert images[0].encoding == 'mono8'
    assert image_to_numpy(images[0]).shape == (60, 80)
