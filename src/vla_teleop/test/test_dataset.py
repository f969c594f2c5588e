"""The dataset writer, read back with pyarrow and PyAV only (what LeRobot's loader reads)."""

import itertools
import json
import signal
import subprocess
import sys
import textwrap
import time

import av
import numpy as np
import pyarrow.parquet as pq
import pytest

from vla_teleop.dataset import DatasetError
from vla_teleop.dataset import DatasetSpec
from vla_teleop.dataset import LeRobotDatasetWriter

SPEC = DatasetSpec(
    fps=30,
    state_names=('j0', 'j1'),
    action_names=('j0', 'j1'),
    cameras={'front': (48, 64), 'wrist': (32, 40)},
    robot_type='so101',
)


def frame_image(shape, value):
    image = np.zeros((*shape, 3), np.uint8)
    image[..., 0] = value  # red channel encodes the frame number
    image[..., 1] = 128
    return image


def record(writer, task, length, offset=0.0):
    writer.start_episode(task)
    for i in range(length):
        images = {c: frame_image(s, (i * 7) % 250) for c, s in SPEC.cameras.items()}
        writer.add_frame(np.array([i, -i]) + offset, np.array([i + 1, -i - 1]) + offset, images)
    return writer.save_episode()


def read_data(root):
    tables = [pq.read_table(p) for p in sorted(root.glob('data/*/*.parquet'))]
    return [row for table in tables for row in table.to_pylist()]


def decode(path):
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = [
            (f.pts * stream.time_base, f.to_ndarray(format='rgb24'))
            for f in container.decode(stream)
        ]
    return frames


def test_recorded_episodes_read_back_field_by_field(tmp_path):
    writer = LeRobotDatasetWriter(tmp_path, SPEC)
    lengths = [
        record(writer, 'pick up the red cube', 20),
        record(writer, 'pick up the blue cube', 13),
        record(writer, 'pick up the red cube', 9),
    ]
    info = json.loads((tmp_path / 'meta/info.json').read_text())
    assert info['codebase_version'] == 'v3.0'
    assert (info['total_episodes'], info['total_frames'], info['total_tasks']) == (3, 42, 2)
    assert info['splits'] == {'train': '0:3'}
    assert info['features']['observation.images.front']['shape'] == [48, 64, 3]

    rows = read_data(tmp_path)
    assert [r['index'] for r in rows] == list(range(42))
    episodes = pq.read_table(tmp_path / 'meta/episodes/chunk-000/file-000.parquet').to_pylist()
    all_episodes = [
        row
        for p in sorted(tmp_path.glob('meta/episodes/*/*.parquet'))
        for row in pq.read_table(p).to_pylist()
    ]
    assert [e['episode_index'] for e in all_episodes] == [0, 1, 2]
    assert episodes[0]['tasks'] == ['pick up the red cube']
    start = 0
    for episode, length in zip(all_episodes, lengths, strict=True):
        assert (episode['length'], episode['dataset_from_index']) == (length, start)
        assert episode['dataset_to_index'] == start + length
        mine = [r for r in rows if r['episode_index'] == episode['episode_index']]
        assert [r['frame_index'] for r in mine] == list(range(length)), 'contiguous frames'
        stamps = [r['timestamp'] for r in mine]
        assert all(b > a for a, b in itertools.pairwise(stamps)), 'monotone time'
        np.testing.assert_allclose(stamps, np.arange(length) / 30, atol=1e-6)
        np.testing.assert_allclose(
            [r['observation.state'] for r in mine], [[i, -i] for i in range(length)]
        )
        for camera in SPEC.cameras:
            key = f'observation.images.{camera}'
            video = tmp_path / (
                f'videos/{key}/chunk-{episode[f"videos/{key}/chunk_index"]:03d}/'
                f'file-{episode[f"videos/{key}/file_index"]:03d}.mp4'
            )
            frames = decode(video)
            assert len(frames) == length, 'video frames == parquet rows'
            assert [float(t) for t, _ in frames] == pytest.approx(stamps, abs=1e-4)
            reds = [int(np.median(image[..., 0])) for _, image in frames]
            assert np.max(np.abs(np.array(reds) - [(i * 7) % 250 for i in range(length)])) <= 3
            assert episode[f'videos/{key}/to_timestamp'] == pytest.approx(length / 30)
        start += length
    tasks = pq.read_table(tmp_path / 'meta/tasks.parquet').to_pandas()
    assert list(tasks.index) == ['pick up the red cube', 'pick up the blue cube']
    assert sorted({r['task_index'] for r in rows}) == [0, 1]

    stats = json.loads((tmp_path / 'meta/stats.json').read_text())
    states = np.array([r['observation.state'] for r in rows])
    np.testing.assert_allclose(stats['observation.state']['mean'], states.mean(0), rtol=1e-6)
    np.testing.assert_allclose(stats['observation.state']['std'], states.std(0), rtol=1e-6)
    np.testing.assert_allclose(stats['observation.state']['min'], states.min(0))
    assert stats['observation.state']['count'] == [42]
    assert set(stats['action']) == {
        'min',
        'max',
        'mean',
        'std',
        'count',
        'q01',
        'q10',
        'q50',
        'q90',
        'q99',
    }
    assert np.array(stats['observation.images.front']['mean']).shape == (3, 1, 1)
    green = np.array(stats['observation.images.front']['mean'])[1, 0, 0]
    assert green == pytest.approx(128 / 255, abs=0.02)


def test_reopening_appends_and_discard_writes_nothing(tmp_path):
    record(LeRobotDatasetWriter(tmp_path, SPEC), 'task a', 5)
    writer = LeRobotDatasetWriter(tmp_path, SPEC)
    writer.start_episode('task b')
    writer.add_frame(
        np.zeros(2), np.zeros(2), {c: frame_image(s, 0) for c, s in SPEC.cameras.items()}
    )
    writer.discard_episode()
    assert record(writer, 'task b', 4) == 4
    info = json.loads((tmp_path / 'meta/info.json').read_text())
    assert (info['total_episodes'], info['total_frames']) == (2, 9)
    assert [r['episode_index'] for r in read_data(tmp_path)] == [0] * 5 + [1] * 4


@pytest.mark.parametrize(
    ('change', 'message'),
    [
        (lambda info: info.update(codebase_version='v2.1'), 'version v2.1, not v3.0'),
        (lambda info: info.update(fps=50), 'other features or fps'),
    ],
)
def test_a_dataset_of_another_version_or_shape_is_refused(tmp_path, change, message):
    record(LeRobotDatasetWriter(tmp_path, SPEC), 'task', 3)
    path = tmp_path / 'meta/info.json'
    info = json.loads(path.read_text())
    change(info)
    path.write_text(json.dumps(info))
    with pytest.raises(DatasetError, match=message):
        LeRobotDatasetWriter(tmp_path, SPEC)


def test_bad_frames_and_calls_are_clear_errors(tmp_path):
    writer = LeRobotDatasetWriter(tmp_path, SPEC)
    images = {c: frame_image(s, 0) for c, s in SPEC.cameras.items()}
    with pytest.raises(DatasetError, match='no episode is being recorded'):
        writer.add_frame(np.zeros(2), np.zeros(2), images)
    writer.start_episode('task')
    with pytest.raises(DatasetError, match='already being recorded'):
        writer.start_episode('task')
    with pytest.raises(DatasetError, match=r'state \(3,\)'):
        writer.add_frame(np.zeros(3), np.zeros(2), images)
    with pytest.raises(DatasetError, match='expected'):
        writer.add_frame(np.zeros(2), np.zeros(2), {'front': images['front']})
    with pytest.raises(DatasetError, match='camera wrist'):
        writer.add_frame(np.zeros(2), np.zeros(2), {**images, 'wrist': images['front']})
    with pytest.raises(DatasetError, match='no frames'):
        writer.save_episode()
    assert (
        not (tmp_path / 'meta/info.json').exists()
        or json.loads((tmp_path / 'meta/info.json').read_text())['total_episodes'] == 0
    )
    stray = tmp_path / 'other'
    stray.mkdir()
    (stray / 'notes.txt').write_text('not a dataset')
    with pytest.raises(DatasetError, match=r'not empty and has no meta/info\.json'):
        LeRobotDatasetWriter(stray, SPEC)


KILLED_WRITER = textwrap.dedent("""
    import sys, time
    import numpy as np
    from vla_teleop.dataset import DatasetSpec, LeRobotDatasetWriter
    spec = DatasetSpec(fps=30, state_names=('j0', 'j1'), action_names=('j0', 'j1'),
                       cameras={'front': (48, 64), 'wrist': (32, 40)})
    writer = LeRobotDatasetWriter(sys.argv[1], spec)
    images = {c: np.zeros((*s, 3), np.uint8) for c, s in spec.cameras.items()}
    for episode in range(2):
        writer.start_episode('saved')
        for _ in range(10):
            writer.add_frame(np.zeros(2), np.zeros(2), images)
        writer.save_episode()
    writer.start_episode('lost')
    print('recording', flush=True)
    while True:
        writer.add_frame(np.zeros(2), np.zeros(2), images)
        time.sleep(0.005)
""")


def test_kill_9_during_an_episode_loses_only_that_episode(tmp_path):
    process = subprocess.Popen(
        [sys.executable, '-c', KILLED_WRITER, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout.readline().strip() == 'recording'
    time.sleep(0.3)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert (tmp_path / '.staging').exists(), 'the lost episode was in staging'
    writer = LeRobotDatasetWriter(tmp_path, SPEC)  # reopening cleans up and appends
    assert not (tmp_path / '.staging').exists()
    assert writer.total_episodes == 2
    assert [r['episode_index'] for r in read_data(tmp_path)] == [0] * 10 + [1] * 10
    assert record(writer, 'after the crash', 6) == 6
    assert len(decode(tmp_path / 'videos/observation.images.wrist/chunk-000/file-002.mp4')) == 6


def test_a_crash_between_moving_files_and_counting_them_is_repaired(tmp_path):
    writer = LeRobotDatasetWriter(tmp_path, SPEC)
    record(writer, 'first', 4)
    info_path = tmp_path / 'meta/info.json'
    counted = info_path.read_text()
    record(writer, 'second', 5)
    info_path.write_text(counted)  # as if killed after the moves, before info.json
    writer = LeRobotDatasetWriter(tmp_path, SPEC)
    assert not (tmp_path / 'data/chunk-000/file-001.parquet').exists()
    assert not (tmp_path / 'videos/observation.images.front/chunk-000/file-001.mp4').exists()
    assert writer.tasks == ['first'], 'the uncounted task is dropped'
    stats = json.loads((tmp_path / 'meta/stats.json').read_text())
    assert stats['observation.state']['count'] == [4]
    assert record(writer, 'third', 3) == 3
    assert [r['episode_index'] for r in read_data(tmp_path)] == [0] * 4 + [1] * 3


def test_a_crash_during_the_first_save_leaves_a_dataset_that_reopens(tmp_path):
    LeRobotDatasetWriter(tmp_path, SPEC)
    (tmp_path / 'data/chunk-000').mkdir(parents=True)
    (tmp_path / 'data/chunk-000/file-000.parquet').write_bytes(b'half written')
    writer = LeRobotDatasetWriter(tmp_path, SPEC)
    assert not list(tmp_path.glob('data/*/*.parquet'))
    assert record(writer, 'task', 3) == 3


def test_column_types_are_the_ones_lerobot_reads(tmp_path):
    record(LeRobotDatasetWriter(tmp_path, SPEC), 'task', 3)
    schema = pq.read_schema(tmp_path / 'data/chunk-000/file-000.parquet')
    state = schema.field('observation.state').type
    assert (str(state.value_type), state.list_size) == ('float', 2)  # fixed_size_list<float>[2]
    assert str(schema.field('timestamp').type) == 'float'
    for name in ('frame_index', 'episode_index', 'index', 'task_index'):
        assert str(schema.field(name).type) == 'int64'


def test_episodes_beyond_a_thousand_go_to_the_next_chunk():
    from vla_teleop.dataset import DATA_PATH
    from vla_teleop.dataset import _location

    assert DATA_PATH.format(**_location(999)) == 'data/chunk-000/file-999.parquet'
    assert DATA_PATH.format(**_location(1000)) == 'data/chunk-001/file-000.parquet'
