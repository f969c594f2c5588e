"""A full disk while recording: clear errors, nothing half-written, earlier episodes intact.

The disk is a 3 MB tmpfs mounted for the test (root only; skipped where mounting is not
permitted). The writer test fills it to every level at which a save can fail; the node test
runs the recorder process on it and talks to it over ROS.
"""

import errno
import shutil
import subprocess
import threading
import time

import numpy as np
import pyarrow.parquet as pq
import pytest

from vla_policy.data import LeRobotDataset
from vla_teleop.dataset import DatasetError
from vla_teleop.dataset import DatasetSpec
from vla_teleop.dataset import LeRobotDatasetWriter

PAGE = 4096  # tmpfs allocates whole pages


@pytest.fixture
def small_disk(tmp_path):
    """A 3 MB filesystem of its own, unmounted after the test."""
    disk = tmp_path / 'disk'
    disk.mkdir()
    mount = ['mount', '-t', 'tmpfs', '-o', 'size=3m', 'tmpfs', str(disk)]
    try:
        result = subprocess.run(mount, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.skip(f'cannot mount a tmpfs: {exc}')
    if result.returncode != 0:
        pytest.skip(f'cannot mount a tmpfs: {result.stderr.strip()}')
    yield disk
    if subprocess.run(['umount', str(disk)], capture_output=True).returncode != 0:
        subprocess.run(['umount', '-l', str(disk)], capture_output=True)  # a file still open


def fill(disk, leave: int):
    """Fill `disk` up to `leave` free bytes; returns the filler file."""
    filler = disk / 'filler'
    filler.unlink(missing_ok=True)
    size = max(0, shutil.disk_usage(disk).free - leave)
    with filler.open('wb', buffering=0) as out:
        try:
            while size > 0:
                size -= out.write(b'\0' * min(size, 1 << 20))
        except OSError as exc:  # full a little early (filesystem metadata): full it is
            if exc.errno != errno.ENOSPC:
                raise
    return filler


def files(root):
    """Every file under `root`, as relative paths."""
    return sorted(str(p.relative_to(root)) for p in root.rglob('*') if p.is_file())


# --- the writer -------------------------------------------------------------------------------

SPEC = DatasetSpec(
    fps=30, state_names=('j0', 'j1'), action_names=('j0', 'j1'), cameras={'front': (24, 32)}
)


def record(writer, task, length=10, seed=0):
    """An episode of noise images (video that does not compress: it takes space)."""
    rng = np.random.default_rng(seed)
    writer.start_episode(task)
    for i in range(length):
        image = rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)
        writer.add_frame(np.array([i, -i]), np.array([i + 1, -i - 1]), {'front': image})


def check_dataset(root, tasks, lengths):
    """What LeRobot's loader reads: the episodes, their rows and tasks (vla_policy's reader)."""
    dataset = LeRobotDataset(root)
    assert [e.length for e in dataset.episodes] == lengths
    assert dataset.tasks == tasks
    assert len(dataset.states) == sum(lengths)
    assert list(dataset.frame_index) == [i for n in lengths for i in range(n)]


def test_a_save_that_runs_out_of_space_anywhere_changes_nothing(small_disk):
    base = small_disk / 'base'
    writer = LeRobotDatasetWriter(base, SPEC)
    for k, task in enumerate(('pick', 'place')):
        record(writer, task, seed=k)
        writer.save_episode()
    saved = files(base)
    failures = []
    for leave in range(0, 400 * 1024, PAGE):  # until a save fits
        work = small_disk / 'work'
        shutil.copytree(base, work)
        writer = LeRobotDatasetWriter(work, SPEC)
        record(writer, 'stack', seed=2)
        filler = fill(small_disk, leave)
        try:
            writer.save_episode()
            error = ''
        except DatasetError as exc:
            error = str(exc)
        if not error:
            check_dataset(work, ['pick', 'place', 'stack'], [10, 10, 10])
            break
        failures.append(error)
        assert 'No space left on device' in error
        # Nothing of the episode anywhere, on disk or in the writer.
        assert files(work) == saved, f'{leave} bytes free: {error}'
        assert (writer.total_episodes, writer.tasks) == (2, ['pick', 'place'])
        check_dataset(work, ['pick', 'place'], [10, 10])
        filler.unlink()
        record(writer, 'pour', length=5, seed=3)  # the writer goes on as if nothing was
        assert writer.save_episode() == 5
        check_dataset(work, ['pick', 'place', 'pour'], [10, 10, 5])
        assert writer.info['total_tasks'] == 3
        shutil.rmtree(work)
    else:
        pytest.fail('the episode never fitted')
    # Out of space while encoding the video, writing the data, the episode's metadata, ...
    assert any('video' in f for f in failures), failures
    assert len(failures) >= 5, failures
    reopened = LeRobotDatasetWriter(base, SPEC)
    assert files(base) == saved
    assert reopened.total_episodes == 2
    stats = pq.read_table(base / 'meta/episodes/chunk-000/file-001.parquet').to_pylist()
    assert stats[0]['length'] == 10


# --- the recorder node ------------------------------------------------------------------------

JOINTS = ['shoulder_pan', 'shoulder_lift', 'elbow_flex', 'wrist_flex', 'wrist_roll', 'gripper']
HEIGHT, WIDTH = 96, 128


class Robot:
    """joint_states, joint_command and noise images from the test process at 30 Hz."""

    def __init__(self, ros):
        from sensor_msgs.msg import Image
        from sensor_msgs.msg import JointState

        from vla_common.qos import IMAGE_QOS
        from vla_common.qos import STATE_QOS
        from vla_perception.image_conversion import numpy_to_image

        self._node = ros.node
        self._messages = (JointState, Image, numpy_to_image)
        self._publishers = [
            ros.node.create_publisher(JointState, 'joint_states', STATE_QOS),
            ros.node.create_publisher(JointState, 'joint_command', STATE_QOS),
            ros.node.create_publisher(Image, 'camera/front/image_raw', IMAGE_QOS),
        ]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        joint_state, image, numpy_to_image = self._messages
        rng = np.random.default_rng(0)
        states, commands, images = self._publishers
        k = 0
        while not self._stop.wait(1 / 30):
            stamp = self._node.get_clock().now().to_msg()
            position = [0.1 * np.sin(k / 30 + j) for j in range(len(JOINTS))]
            for publisher in (states, commands):
                msg = joint_state(name=JOINTS, position=position)
                msg.header.stamp = stamp
                publisher.publish(msg)
            pixels = rng.integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)
            frame = numpy_to_image(pixels, 'rgb8', image())
            frame.header.stamp = stamp
            images.publish(frame)
            k += 1

    def stop(self):
        self._stop.set()
        self._thread.join(timeout=2.0)


def call(ros, srv_type, name, request):
    client = ros.node.create_client(srv_type, name)
    assert client.wait_for_service(timeout_sec=20), f'{name} not available'
    future = client.call_async(request)
    ros.wait_for(future.done, 30, f'{name} to answer')
    return future.result()


def recorder_status(diagnostics):
    """The recorder's latest status and its values (None, {} before the first)."""
    statuses = [s for a in list(diagnostics) for s in a.status if s.name == 'recorder: recorder']
    if not statuses:
        return None, {}
    return statuses[-1], {kv.key: kv.value for kv in statuses[-1].values}


@pytest.mark.ros
def test_the_recorder_on_a_full_disk_says_so_and_keeps_what_it_saved(ros, launch_node, small_disk):
    from diagnostic_msgs.msg import DiagnosticArray

    from vla_common.qos import STATE_QOS
    from vla_msgs.srv import StartEpisode
    from vla_msgs.srv import StopEpisode

    root = small_disk / 'dataset'
    diagnostics = ros.subscribe(DiagnosticArray, 'diagnostics', STATE_QOS)
    recorder = launch_node(
        'vla_teleop',
        'recorder_node',
        name='recorder',
        params={
            'dataset_dir': str(root),
            'cameras': ['front'],
            'width': WIDTH,
            'height': HEIGHT,
            'min_free_mb': 0.3,
        },
    )
    robot = Robot(ros)

    def start(task):
        return call(
            ros, StartEpisode, 'recorder/start_episode', StartEpisode.Request(instruction=task)
        )

    def stop(keep=True):
        return call(ros, StopEpisode, 'recorder/stop_episode', StopEpisode.Request(keep=keep))

    try:
        deadline = time.monotonic() + 30  # discovery: every source must have arrived
        while not (started := start('pick')).success and time.monotonic() < deadline:
            time.sleep(0.5)
        assert started.success, f'{started.message}\n{recorder.output}'
        time.sleep(1.0)
        assert stop().success
        assert start('place').success
        time.sleep(1.0)
        stopped = stop()
        assert stopped.success, stopped.message
        saved = files(root)
        lengths = [e.length for e in LeRobotDataset(root).episodes]

        # Nearly full: no episode starts, and the recorder says why.
        filler = fill(small_disk, 100 * 1024)
        refused = start('stack')
        assert not refused.success
        assert refused.message.startswith('cannot start: disk full: 0.1 MB free in'), refused
        assert 'min_free_mb 0.3' in refused.message
        assert 'start_episode: cannot start: disk full' in recorder.output
        ros.wait_for(
            lambda: (s := recorder_status(diagnostics)[0]) is not None
            and s.level == b'\x02'
            and s.message.startswith('disk full'),
            5,
            'an ERROR about the disk in diagnostics',
        )

        # Enough to start, not enough to finish: the episode is discarded, explicitly.
        filler = fill(small_disk, 600 * 1024)
        started = start('stack')
        assert started.success, started.message
        ros.wait_for(
            lambda: 'episode discarded' in recorder.output
            or shutil.disk_usage(small_disk).free < 64 * 1024,
            20,
            'the disk to fill up',
        )
        time.sleep(0.5)  # the frames of the last moment
        stopped = stop(keep=True)
        assert not stopped.success
        assert 'No space left on device' in stopped.message, stopped.message
        assert stopped.message.startswith(('episode discarded', 'episode not saved')), stopped
        assert 'No space left on device' in recorder.output
        ros.wait_for(
            lambda: 'No space left on device'
            in recorder_status(diagnostics)[1].get('last_error', ''),
            5,
            'the failure in diagnostics',
        )
        status, values = recorder_status(diagnostics)
        # The discarded episode's files are gone: the space is free again, the error stays.
        assert status.level == b'\x01', status
        assert 'No space left on device' in status.message
        assert values['episodes_saved'] == '2'
        assert values['recording'] == 'False'
        # Every episode saved before is there and loads; nothing of the failed one is left.
        assert files(root) == saved
        check_dataset(root, ['pick', 'place'], lengths)

        # Space again: recording goes on where it was.
        filler.unlink()
        assert start('stack').success
        time.sleep(1.0)
        stopped = stop()
        assert stopped.success, stopped.message
        assert stopped.episode_index == 2
        check_dataset(root, ['pick', 'place', 'stack'], [*lengths, stopped.num_frames])
        assert recorder.process.poll() is None, 'the recorder kept running'
    finally:
        robot.stop()
        recorder.stop()
