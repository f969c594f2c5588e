"""Training on a small dataset written by the recorder's LeRobotDataset writer."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from vla_common.errors import ConfigError
from vla_common.robot_config import load_robot_config
from vla_policy.checkpoint import load_checkpoint
from vla_policy.data import DatasetError
from vla_policy.data import LeRobotDataset
from vla_policy.data import chunk_rows
from vla_policy.inference import PolicyRunner
from vla_policy.normalization import Normalizer
from vla_policy.train import Trainer
from vla_policy.train_params import parse_arguments
from vla_teleop.dataset import DatasetSpec
from vla_teleop.dataset import LeRobotDatasetWriter

torch.set_num_threads(1)
JOINTS = list(load_robot_config('so101')['joints'])
SHAPE = (48, 64)
TASKS = {'pick up the red cube': (220, 40, 40), 'pick up the blue cube': (40, 40, 220)}


def write_dataset(root, episodes=6, length=40, shape=SHAPE):
    spec = DatasetSpec(
        fps=30,
        state_names=tuple(JOINTS),
        action_names=tuple(JOINTS),
        cameras={'front': shape, 'wrist': shape},
        robot_type='so101',
    )
    writer = LeRobotDatasetWriter(root, spec)
    rng = np.random.default_rng(0)
    for e in range(episodes):
        task = list(TASKS)[e % 2]
        sign = 1.0 if e % 2 == 0 else -1.0  # the instruction decides the direction
        writer.start_episode(task)
        start = rng.uniform(-0.2, 0.2, len(JOINTS))
        for t in range(length):
            state = start + sign * 0.02 * t
            image = np.zeros((*shape, 3), np.uint8)
            image[:] = TASKS[task]
            image[t % shape[0], :, :] = 255  # something that moves
            writer.add_frame(state, state + sign * 0.02, {'front': image, 'wrist': image[::-1]})
        writer.save_episode()
    return root


@pytest.fixture(scope='module')
def dataset(tmp_path_factory):
    return write_dataset(tmp_path_factory.mktemp('data') / 'dataset')


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv('VLA_CACHE_DIR', str(tmp_path / 'cache'))


def params(dataset, out, **overrides):
    base = {
        'dataset': str(dataset),
        'output': str(out),
        'preset': 'tiny',
        'steps': 20,
        'batch_size': 8,
        'lr': 1e-3,
        'warmup_steps': 5,
        'val_every': 10,
        'save_every': 10,
        'val_fraction': 0.34,
        'threads': 1,
    }
    return parse_arguments([f'{k}:={v}' for k, v in {**base, **overrides}.items()])


def test_the_reader_gives_frames_states_and_padded_action_chunks(dataset):
    data = LeRobotDataset(dataset)
    assert data.cameras == ['front', 'wrist']
    assert data.state_names == JOINTS
    assert len(data.episodes) == 6
    assert sorted(data.tasks) == sorted(TASKS)
    episode = data.episodes[1]
    frames = data.decode_episode(episode, 'front', [24, 32])
    assert frames.shape == (40, 24, 32, 3)
    assert abs(int(frames[5, 0, 0, 2]) - 220) < 30, 'blue episode decodes blue'
    rows, mask = chunk_rows(episode, 35, 16)
    assert mask.sum() == 5
    assert rows[-1] == episode.start + 39
    np.testing.assert_allclose(data.actions[rows[0]], data.states[episode.start + 35] - 0.02)


def test_training_lowers_the_loss_and_writes_a_checkpoint_the_policy_loads(dataset, tmp_path):
    trainer = Trainer(params(dataset, tmp_path / 'run', steps=150, val_every=50, lr=3e-3))
    checkpoint = trainer.train()
    train = [loss for _, loss in trainer.history['train']]
    assert np.mean(train[-20:]) < 0.6 * np.mean(train[:20]), (train[:20], train[-20:])
    assert trainer.history['val'][-1][1] < trainer.history['val'][0][1]
    assert (tmp_path / 'run' / 'training_curves.png').stat().st_size > 1000
    model, normalizer = load_checkpoint(
        checkpoint, load_robot_config('so101') | {'cameras': {'front': {}, 'wrist': {}}}
    )
    assert model.config.camera_shapes == {'front': list(SHAPE), 'wrist': list(SHAPE)}
    # The normalisation came from meta/stats.json.
    stats = json.loads((dataset / 'meta' / 'stats.json').read_text())
    assert normalizer.stats['action']['mean'].tolist() == stats['action']['mean']
    image = np.zeros((*SHAPE, 3), np.uint8)
    chunk = PolicyRunner(model, normalizer).infer(
        {'front': image, 'wrist': image}, np.zeros(len(JOINTS)), 'pick up the red cube'
    )
    assert np.isfinite(chunk.actions).all()


def test_resume_after_ctrl_c_equals_an_uninterrupted_run(dataset, tmp_path, monkeypatch):
    Trainer(params(dataset, tmp_path / 'straight')).train()

    interrupted = Trainer(params(dataset, tmp_path / 'resumed'))
    batch = interrupted.batch

    def ctrl_c_at_step_7(*args):
        if interrupted.step == 7:
            raise KeyboardInterrupt
        return batch(*args)

    monkeypatch.setattr(interrupted, 'batch', ctrl_c_at_step_7)
    with pytest.raises(KeyboardInterrupt):
        interrupted.train()
    assert (
        json.loads((tmp_path / 'resumed' / 'train_state' / 'trainer.json').read_text())['step']
        == 7
    )
    Trainer(params(dataset, tmp_path / 'resumed', resume=True)).train()
    a = load_file(str(tmp_path / 'straight' / 'checkpoint' / 'model.safetensors'))
    b = load_file(str(tmp_path / 'resumed' / 'checkpoint' / 'model.safetensors'))
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_normalization_round_trip_is_exact(tmp_path):
    rng = np.random.default_rng(1)
    stats = {
        f: {k: rng.normal(size=6) * 1e3 for k in ('mean', 'std', 'q01', 'q99')}
        for f in ('observation.state', 'action')
    }
    for mode in ('mean_std', 'quantile'):
        Normalizer(mode, stats).save(tmp_path / 'n.json')
        loaded = Normalizer.load(tmp_path / 'n.json')
        for f in stats:
            for k in stats[f]:
                assert loaded.stats[f][k].tolist() == stats[f][k].tolist()
        values = rng.normal(size=(5, 6))
        assert np.array_equal(
            loaded.normalize('action', values), Normalizer(mode, stats).normalize('action', values)
        )


def test_bad_datasets_are_named(dataset, tmp_path):
    with pytest.raises(DatasetError, match=r'no meta/info\.json'):
        LeRobotDataset(tmp_path)
    with pytest.raises(DatasetError, match=r'observation\.images\.top'):
        Trainer(params(dataset, tmp_path / 'x', cameras='top'))
    broken = write_dataset(tmp_path / 'broken', episodes=2, length=10)
    video = next((broken / 'videos' / 'observation.images.front').rglob('*.mp4'))
    video.write_bytes(b'not a video')
    with pytest.raises(DatasetError, match=str(video.name)):
        Trainer(params(broken, tmp_path / 'y'))
    with pytest.raises(ConfigError, match='dataset:='):
        Trainer(parse_arguments(['steps:=3']))
