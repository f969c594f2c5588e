"""Our reader on a dataset written by the real LeRobot library (lerobot 0.4.4), not by our writer.

The fixture `data/lerobot_v30/` was made by `data/make_lerobot_dataset.py` in an isolated
environment with LeRobot installed (see that script); this test needs no LeRobot. The expected
values come from the generator's own functions, so the two cannot drift apart silently.

LeRobot 0.4.4 puts all 3 episodes in one data parquet file and one AV1 mp4 per camera, so
episodes 1 and 2 start mid-file: their frames are found through `dataset_from_index` and
`videos/<key>/from_timestamp`, which our own writer (one file per episode) never exercises.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from vla_policy.data import LeRobotDataset
from vla_policy.data import chunk_rows
from vla_policy.data import frame_cache
from vla_policy.normalization import Normalizer

DATA = Path(__file__).parent / 'data'
FIXTURE = DATA / 'lerobot_v30'


def _generator():
    path = DATA / 'make_lerobot_dataset.py'
    spec = importlib.util.spec_from_file_location('make_lerobot_dataset', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # imports only numpy at module level
    return module


gen = _generator()
STARTS = np.cumsum([0, *gen.LENGTHS[:-1]]).tolist()
TOTAL = sum(gen.LENGTHS)
CAMERAS = {
    'front': (gen.FRONT_COLOURS, gen.front_row),
    'wrist': (gen.WRIST_COLOURS, gen.wrist_row),
}


@pytest.fixture(scope='module')
def data():
    if not (FIXTURE / 'videos').is_dir():
        pytest.fail(f'{FIXTURE}/videos is missing: is *.mp4 ignored by git there?')
    return LeRobotDataset(FIXTURE)


def test_the_fixture_is_lerobots_multi_episode_layout(data):
    assert data.info['codebase_version'] == 'v3.0'
    assert sorted(p.relative_to(FIXTURE).as_posix() for p in FIXTURE.rglob('*.parquet')) == [
        'data/chunk-000/file-000.parquet',
        'meta/episodes/chunk-000/file-000.parquet',
        'meta/tasks.parquet',
    ]
    for camera in CAMERAS:
        paths = {e.videos[camera][0] for e in data.episodes}
        assert paths == {FIXTURE / f'videos/observation.images.{camera}/chunk-000/file-000.mp4'}


def test_features_and_names(data):
    assert data.fps == gen.FPS
    assert data.cameras == ['front', 'wrist']
    assert data.state_names == gen.JOINTS
    assert data.action_names == gen.JOINTS
    assert data.camera_shape('front') == [gen.HEIGHT, gen.WIDTH]
    data.check_policy(gen.JOINTS, ['front', 'wrist'])  # raises if anything is missing


def test_episodes_lengths_starts_and_video_offsets(data):
    assert [e.index for e in data.episodes] == [0, 1, 2]
    assert [e.length for e in data.episodes] == gen.LENGTHS
    assert [e.start for e in data.episodes] == STARTS
    for episode, start in zip(data.episodes, STARTS, strict=True):
        for camera in CAMERAS:
            assert episode.videos[camera][1] == pytest.approx(start / gen.FPS, abs=1e-6)
    assert len(data.states) == len(data.actions) == TOTAL


def test_tasks_per_frame(data):
    assert data.tasks == ['pick up the red cube', 'pick up the blue cube']
    for episode in data.episodes:
        rows = slice(episode.start, episode.start + episode.length)
        assert (data.episode_index[rows] == episode.index).all()
        assert data.frame_index[rows].tolist() == list(range(episode.length))
        assert {data.tasks[i] for i in data.task_index[rows]} == {gen.TASKS[episode.index]}


def test_states_and_actions_are_what_lerobot_was_given(data):
    for episode in data.episodes:
        for t in range(episode.length):
            row = episode.start + t
            np.testing.assert_array_equal(data.states[row], gen.state(episode.index, t))
            np.testing.assert_array_equal(data.actions[row], gen.action(episode.index, t))
    assert data.states.dtype == data.actions.dtype == np.float32


def _check_frames(frames: np.ndarray, episode: int, camera: str) -> None:
    """Solid colour within codec noise, and the 2 white rows exactly where frame t put them."""
    colours, row_of = CAMERAS[camera]
    assert frames.shape == (gen.LENGTHS[episode], gen.HEIGHT, gen.WIDTH, 3)
    for t, frame in enumerate(frames.astype(int)):
        row = row_of(t)
        expected = gen.image(colours[episode], row).astype(int)
        far = np.ones(gen.HEIGHT, bool)
        far[max(0, row - 2) : row + 4] = False  # chroma subsampling smears the band's edges
        where = f'{camera} episode {episode} frame {t}'
        assert np.abs(frame[far] - expected[far]).max() <= 20, f'{where}: wrong colour'
        assert frame[row : row + 2].min() >= 200, f'{where}: no white band at row {row}'
        assert np.abs(frame - expected).max() <= 60, where


@pytest.mark.parametrize('camera', ['front', 'wrist'])
@pytest.mark.parametrize('episode', [1, 2])
def test_video_frames_of_an_episode_that_starts_mid_file(data, episode, camera):
    frames = data.decode_episode(data.episodes[episode], camera, [gen.HEIGHT, gen.WIDTH])
    _check_frames(frames, episode, camera)


def test_frame_cache_aligns_video_frames_with_data_rows(data, tmp_path):
    frames = frame_cache(data, ['front', 'wrist'], [gen.HEIGHT, gen.WIDTH], tmp_path)
    assert frames.shape == (TOTAL, 2, gen.HEIGHT, gen.WIDTH, 3)
    for episode in data.episodes:
        block = np.asarray(frames[episode.start : episode.start + episode.length])
        _check_frames(block[:, 0], episode.index, 'front')
        _check_frames(block[:, 1], episode.index, 'wrist')
    small = data.decode_episode(data.episodes[2], 'front', [24, 32])  # resized on decode
    assert small.shape == (gen.LENGTHS[2], 24, 32, 3)


def test_action_chunks_stay_inside_an_episode(data):
    episode = data.episodes[1]
    rows, mask = chunk_rows(episode, episode.length - 3, 8)
    assert mask.tolist() == [True] * 3 + [False] * 5
    assert rows[-1] == episode.start + episode.length - 1
    np.testing.assert_array_equal(data.actions[rows[-1]], gen.action(1, episode.length - 1))


def test_lerobot_stats_feed_our_normalizer(data):
    stats = data.stats()
    assert set(stats) == {'observation.state', 'action'}
    for key, values in (('observation.state', data.states), ('action', data.actions)):
        s = stats[key]
        for name in ('mean', 'std', 'min', 'max', 'q01', 'q99'):
            assert s[name].shape == (len(gen.JOINTS),), name
        np.testing.assert_allclose(s['mean'], values.mean(axis=0, dtype=np.float64), atol=1e-6)
        np.testing.assert_allclose(s['std'], values.std(axis=0, dtype=np.float64), atol=1e-5)
        np.testing.assert_allclose(s['min'], values.min(axis=0))
        np.testing.assert_allclose(s['max'], values.max(axis=0))
        # LeRobot aggregates per-episode quantiles by a count-weighted mean: ordered, not exact.
        assert (s['min'] <= s['q01']).all()
        assert (s['q01'] < s['q99']).all()
        assert (s['q99'] <= s['max']).all()
    for mode in ('mean_std', 'quantile'):
        normalizer = Normalizer(mode=mode, stats=stats)
        normalized = normalizer.normalize('observation.state', data.states)
        assert np.isfinite(normalized).all()
        np.testing.assert_allclose(
            normalizer.unnormalize('observation.state', normalized), data.states, atol=1e-6
        )
    normalized = Normalizer(mode='mean_std', stats=stats).normalize('action', data.actions)
    np.testing.assert_allclose(normalized.mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(normalized.std(axis=0), 1.0, atol=1e-4)


def test_image_features_stored_in_the_parquet_are_refused_by_name(tmp_path):
    import json
    import shutil

    from vla_policy.data import DatasetError

    copy = shutil.copytree(FIXTURE, tmp_path / 'images')
    info_path = copy / 'meta' / 'info.json'
    info = json.loads(info_path.read_text())
    info['features']['observation.images.wrist']['dtype'] = 'image'  # LeRobot's use_videos=False
    info_path.write_text(json.dumps(info))
    with pytest.raises(DatasetError, match=r'observation\.images\.wrist stored as images'):
        LeRobotDataset(copy)
