"""Training on a small dataset written by the recorder's LeRobotDataset writer."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from vla_common.errors import ConfigError
from vla_common.grounding import GroundingScenes
from vla_common.robot_config import load_robot_config
from vla_policy.checkpoint import load_checkpoint
from vla_policy.data import DatasetError
from vla_policy.data import Episode
from vla_policy.data import LeRobotDataset
from vla_policy.data import chunk_rows
from vla_policy.data import frame_cache
from vla_policy.data import next_grasp_rows
from vla_policy.data import relative_action_stats
from vla_policy.data import split_episodes
from vla_policy.finetune import BINS
from vla_policy.finetune import from_bins
from vla_policy.finetune import to_bins
from vla_policy.inference import PolicyRunner
from vla_policy.model import EXPERT_PARTS
from vla_policy.normalization import RELATIVE_ACTION
from vla_policy.normalization import Normalizer
from vla_policy.train import Trainer
from vla_policy.train_params import parse_arguments
from vla_teleop.dataset import DatasetSpec
from vla_teleop.dataset import LeRobotDatasetWriter

torch.set_num_threads(1)
JOINTS = list(load_robot_config('so101')['joints'])
SHAPE = (48, 64)
TASKS = {'pick up the red cube': (220, 40, 40), 'pick up the blue cube': (40, 40, 220)}


def dataset_spec(shape=SHAPE) -> DatasetSpec:
    return DatasetSpec(
        fps=30,
        state_names=tuple(JOINTS),
        action_names=tuple(JOINTS),
        cameras={'front': shape, 'wrist': shape},
        robot_type='so101',
    )


def write_dataset(root, episodes=6, length=40, shape=SHAPE):
    writer = LeRobotDatasetWriter(root, dataset_spec(shape))
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


def test_a_grown_dataset_reuses_the_cache_of_its_earlier_episodes(tmp_path):
    """Corrections appended to a copy of the training set: only the new episodes decode."""
    original = write_dataset(tmp_path / 'original', episodes=2, length=10)
    cache = tmp_path / 'cache'
    frame_cache(LeRobotDataset(original), ['front'], [24, 32], cache)
    (earlier,) = (cache / 'frames').glob('*.npy')
    marked = np.load(earlier, mmap_mode='r+')
    marked[3] = 7  # were it decoded again, row 3 would be the video's
    marked.flush()
    copy = tmp_path / 'copy'
    shutil.copytree(original, copy)
    assert (frame_cache(LeRobotDataset(copy), ['front'], [24, 32], cache)[3] == 7).all()
    grown = tmp_path / 'grown'
    shutil.copytree(original, grown)
    writer = LeRobotDatasetWriter(grown, dataset_spec())
    writer.start_episode('pick up the red cube')
    for t in range(5):
        image = np.full((*SHAPE, 3), 30 * t, np.uint8)
        writer.add_frame(
            np.zeros(len(JOINTS)), np.zeros(len(JOINTS)), {'front': image, 'wrist': image}
        )
    writer.save_episode()
    data = LeRobotDataset(grown)
    frames = frame_cache(data, ['front'], [24, 32], cache)
    assert frames.shape == (25, 1, 24, 32, 3)
    assert (frames[3] == 7).all(), 'the earlier rows come from the earlier cache'
    np.testing.assert_array_equal(
        frames[20:, 0], data.decode_episode(data.episodes[2], 'front', [24, 32])
    )
    episode_file = next((original / 'meta' / 'episodes').glob('*/file-001.parquet'))
    episode_file.write_bytes(episode_file.read_bytes())  # same bytes, a new write
    rewritten = frame_cache(LeRobotDataset(original), ['front'], [24, 32], cache)
    assert not (rewritten[3] == 7).all(), 'a rewritten episode is decoded again'


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


def test_relative_actions_subtract_the_state_from_the_arm_joints_only():
    rng = np.random.default_rng(2)
    stats = {
        f: {'mean': rng.normal(size=6), 'std': rng.uniform(0.5, 2.0, 6)}
        for f in ('observation.state', 'action', RELATIVE_ACTION)
    }
    normalizer = Normalizer('mean_std', stats)
    relative = [True] * 5 + [False]
    actions, state = rng.normal(size=(16, 6)), rng.normal(size=6)
    normalized = normalizer.normalize_actions(actions, state, relative)
    np.testing.assert_allclose(
        normalized[:, :5], normalizer.normalize(RELATIVE_ACTION, actions - state)[:, :5]
    )
    np.testing.assert_allclose(
        normalized[:, 5], normalizer.normalize(RELATIVE_ACTION, actions)[:, 5]
    )
    np.testing.assert_allclose(
        normalizer.unnormalize_actions(normalized, state, relative), actions, atol=1e-12
    )
    # Without relative joints, the plain action statistics.
    np.testing.assert_allclose(
        normalizer.normalize_actions(actions, state, [False] * 6),
        normalizer.normalize('action', actions),
    )


def test_relative_action_statistics_span_the_chunk(dataset):
    data = LeRobotDataset(dataset)
    horizon = 16
    stats = relative_action_stats(
        data.states, data.actions, data.episodes, horizon, [True] * 5 + [False]
    )
    # Each episode moves every joint 0.02 rad per frame, up or down by its instruction: a
    # chunk's arm targets lie 0.02 .. 0.02 * horizon from the state at capture.
    np.testing.assert_allclose(stats['max'][:5], 0.02 * horizon, atol=1e-5)
    np.testing.assert_allclose(stats['min'][:5], -0.02 * horizon, atol=1e-5)
    # The gripper keeps its absolute targets.
    assert stats['max'][5] == pytest.approx(data.actions[:, 5].max(), abs=1e-6)


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


def _batch_of(trainer, seed=5):
    return trainer.batch(trainer.train_episodes, torch.Generator().manual_seed(seed), False)


def test_lora_trains_only_adapters_in_the_backbone_and_saves_a_plain_checkpoint(dataset, tmp_path):
    trainer = Trainer(params(dataset, tmp_path / 'lora', steps=12, lora_rank=4, ema_decay=0))
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    trained = {n for n, q in trainer.model.named_parameters() if q.requires_grad}
    in_backbone = {n for n in trained if n.startswith('prefix_layers.')}
    assert in_backbone
    assert all('lora_' in n for n in in_backbone)
    assert 'action_out.weight' in trained, 'the action expert is trained in full'
    checkpoint = trainer.train()
    after = trainer.model.state_dict()
    for name, value in before.items():
        if name.startswith('prefix_layers.') and 'lora_' not in name:
            assert torch.equal(value, after[name]), f'{name}: frozen base weight changed'
    assert any(not torch.equal(v, after[n]) for n, v in before.items() if 'lora_B' in n), (
        'the adapters learned'
    )
    plain, _ = load_checkpoint(checkpoint, load_robot_config('so101'))
    obs = _batch_of(trainer).obs
    noise = torch.randn(len(obs.state), trainer.config.chunk_length, trainer.config.max_action_dim)
    trainer.model.eval()
    with torch.no_grad():
        expected = trainer.model.sample(obs, noise)
        got = plain.sample(obs, noise)
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)


def test_knowledge_insulation_keeps_the_flow_loss_out_of_the_backbone(dataset, tmp_path):
    trainer = Trainer(params(dataset, tmp_path / 'ki', knowledge_insulation=True, steps=10))
    batch = _batch_of(trainer)
    obs, actions, mask = batch.obs, batch.actions, batch.mask
    model = trainer.model

    def gradients(loss):
        model.zero_grad(set_to_none=True)
        trainer.action_head.zero_grad(set_to_none=True)
        loss.backward()
        backbone = [q.grad for q in model.prefix_layers.parameters()]
        expert = [q.grad for q in model.expert_layers.parameters()]
        return backbone, expert

    backbone, expert = gradients(trainer.loss(batch, torch.Generator()))
    assert all(g is None for g in backbone), 'the flow loss reached the backbone'
    assert all(g is not None and g.abs().sum() > 0 for g in expert)
    prefix = model.prefix_forward(obs)
    backbone, expert = gradients(trainer.action_head.loss(prefix, actions, mask))
    assert all(g is not None for g in backbone), 'the backbone learns from the action tokens'
    assert all(g is None for g in expert)

    def total_loss():
        with torch.no_grad():
            generator = torch.Generator().manual_seed(1)
            return trainer.loss(batch, generator, auxiliary=True)

    first = total_loss()
    trainer.train()
    last = total_loss()
    assert float(last) < float(first)
    assert load_checkpoint(tmp_path / 'ki' / 'checkpoint')[0] is not None


def test_action_bins_round_trip_within_half_a_bin():
    limit = 3.0
    actions = torch.linspace(-limit, limit, 1001)
    bins = to_bins(actions, limit)
    assert int(bins.min()) == 0
    assert int(bins.max()) == BINS - 1
    half = limit / BINS
    assert float((from_bins(bins, limit) - actions).abs().max()) <= half + 1e-6
    outside = to_bins(torch.tensor([-10.0, 10.0]), limit)
    assert outside.tolist() == [0, BINS - 1]


def test_fine_tuning_starts_from_the_given_checkpoint(dataset, tmp_path):
    source = Trainer(params(dataset, tmp_path / 'base', steps=3)).train()
    fine = Trainer(params(dataset, tmp_path / 'fine', init=str(source), preset='small_cpu'))
    assert fine.config.width == 64, 'the checkpoint config, not the preset'
    saved = load_file(str(source / 'model.safetensors'))
    for name, value in fine.model.state_dict().items():
        assert torch.equal(value, saved[name]), name


def test_a_time_limit_stops_training_with_a_validated_checkpoint(dataset, tmp_path):
    trainer = Trainer(params(dataset, tmp_path / 'timed', steps=1000, max_minutes=1e-6))
    checkpoint = trainer.train()
    assert trainer.step == 1
    assert json.loads((checkpoint / 'config.json').read_text())['training']['step'] == 1
    assert [entry[0] for entry in trainer.history['val']] == [1]


def test_state_dropout_hides_the_state_in_training_batches_only(dataset, tmp_path):
    trainer = Trainer(params(dataset, tmp_path / 'dropout', state_dropout=1.0))
    obs = trainer.batch(trainer.train_episodes, torch.Generator().manual_seed(0), True).obs
    assert torch.count_nonzero(obs.state) == 0
    obs = trainer.batch(trainer.val_episodes, torch.Generator().manual_seed(0), False).obs
    assert torch.count_nonzero(obs.state) > 0


def test_the_goal_of_each_frame_is_the_next_grasp_of_its_episode():
    gripper = np.concatenate(
        [
            [1.0, 1.0, 0.0, 0.0, 1.0, 1.0, 0.0],  # closes at 2, opens, closes again at 6
            [1.0, 1.0, 1.0],  # never closes
            [0.5, 0.5, 0.1, 0.1],  # closes at 2 (its own range's middle)
            [1.0, 0.9, 1.0, 0.9],  # jitters while open: less than a quarter of the range
        ]
    )
    actions = np.stack([np.arange(len(gripper)), gripper], axis=1)
    episodes = [Episode(0, 7, 0, {}), Episode(1, 3, 7, {}), Episode(2, 4, 10, {})]
    episodes.append(Episode(3, 4, 14, {}))
    rows = next_grasp_rows(actions, episodes, [1])
    np.testing.assert_array_equal(rows[:7], [2, 2, 2, 6, 6, 6, 6])
    np.testing.assert_array_equal(rows[7:10], [-1, -1, -1])
    np.testing.assert_array_equal(rows[10:14], [12, 12, 12, 12])
    np.testing.assert_array_equal(rows[14:], [-1, -1, -1, -1])


def test_the_goal_token_learns_the_next_grasp_pose(dataset, tmp_path):
    # val_fraction 0.5 holds out episodes 2 and 5: one of each direction, so one with a grasp.
    trainer = Trainer(params(dataset, tmp_path / 'goal', steps=30, val_fraction=0.5))
    assert trainer.config.goal_token
    # The fixture's gripper closes in the episodes that move down, never in the others.
    assert 0 < (trainer.goal_rows >= 0).mean() < 1
    batch = _batch_of(trainer)
    assert batch.goal_mask.any()
    assert not batch.goal_mask.all()
    with torch.no_grad():
        guess = trainer.model.prefix_forward(batch.obs).goal
    before = float(trainer.goal_error_of(trainer.model, guess, batch))
    trainer.model.zero_grad(set_to_none=True)
    trainer.loss(batch, torch.Generator(), auxiliary=True).backward()
    assert trainer.model.goal.query[1].weight.grad.abs().sum() > 0, 'the instruction learns'
    assert trainer.model.goal.stem.body[0].weight.grad.abs().sum() > 0, 'so does its stem'
    trainer.train()
    with torch.no_grad():
        guess = trainer.model.prefix_forward(batch.obs).goal
    assert float(trainer.goal_error_of(trainer.model, guess, batch)) < before
    assert trainer.history['val_goal'], 'held-out goal error is reported'
    off = Trainer(params(dataset, tmp_path / 'off', goal_weight=0.0))
    assert (off.goal_rows < 0).all()


def test_with_cached_features_the_goal_stem_still_sees_the_pixels(dataset, tmp_path):
    trainer = Trainer(params(dataset, tmp_path / 'cached', preset='small_cpu', batch_size=4))
    assert trainer.features is not None
    assert trainer.config.goal_stem
    batch = _batch_of(trainer)
    assert batch.obs.image_features is not None
    assert batch.obs.images.shape[-2:] == tuple(trainer.config.image_size)
    trainer.loss(batch, torch.Generator(), auxiliary=True).backward()
    assert trainer.model.goal.stem.body[0].weight.grad.abs().sum() > 0


def grounding_scenes(path, scenes=40, joints=JOINTS, rendered=None):
    """A red and a blue bar at random columns; each one's grasp pans to its column."""
    rng = np.random.default_rng(1)
    images = np.zeros((scenes, 2, *SHAPE, 3), np.uint8)
    grasps = np.zeros((scenes, 2, len(joints)), np.float32)
    for s in range(scenes):
        columns = rng.choice(np.arange(4, SHAPE[1] - 8, 8), 2, replace=False)
        for k, colour in enumerate(TASKS.values()):
            images[s, :, :, columns[k] : columns[k] + 6] = colour
            grasps[s, k, 0] = columns[k] / SHAPE[1] - 0.5
    GroundingScenes(
        robot='so101',
        task='pick_cube',
        joint_names=list(joints),
        cameras=['front', 'wrist'],
        images=images,
        instructions=np.array([list(TASKS)] * scenes),
        grasps=grasps,
        seeds=np.arange(scenes),
        rendered_shapes=None if rendered is None else np.array([rendered] * 2),
    ).save(path)
    return path


def test_grounding_scenes_teach_the_goal_token_where_each_named_object_is(dataset, tmp_path):
    scenes = grounding_scenes(tmp_path / 'grounding.npz')
    trainer = Trainer(
        params(dataset, tmp_path / 'g', grounding=scenes, goal_weight=0, steps=100, ema_decay=0)
    )
    assert len(trainer.grounding) == 30  # 10 of the 40 scenes held out (val_fraction 0.34)
    before = trainer.grounding.nearest_fraction(trainer.model)
    trainer.model.zero_grad(set_to_none=True)
    trainer.loss(_batch_of(trainer), torch.Generator(), auxiliary=True).backward()
    assert trainer.model.goal.query[1].weight.grad.abs().sum() > 0
    trainer.train()
    after = trainer.history['val_grounded'][-1][1]
    assert after > max(before, 0.75), f'held-out scenes: {before:.0%} -> {after:.0%} nearest'
    other = grounding_scenes(tmp_path / 'other.npz', joints=[f'j{i}' for i in range(6)])
    with pytest.raises(ConfigError, match='labelled for joints'):
        Trainer(params(dataset, tmp_path / 'bad', grounding=other))


def test_with_goal_target_training_tells_the_recorded_grasp_and_validation_the_guess(
    dataset, tmp_path
):
    trainer = Trainer(params(dataset, tmp_path / 'told', goal_target=True, steps=4))
    assert trainer.config.goal_target
    batch = trainer.batch(trainer.train_episodes, torch.Generator().manual_seed(5), True)
    told, has = batch.obs.goal, batch.goal_mask
    assert has.any()  # the fixture closes the gripper in half its episodes
    assert not has.all()
    assert told[~has].isnan().all()  # no recorded grasp: the guess stands in
    off = (told[has] - batch.goal[has])[:, : trainer.config.action_dim]
    assert 0 < off.abs().mean() < 0.5, 'the recorded grasp, spread by goal_target_noise'
    assert _batch_of(trainer).obs.goal is None, 'validation tells the guess, as at run time'
    trainer.train()
    with pytest.raises(ConfigError, match='goal_target'):
        Trainer(params(dataset, tmp_path / 'x', goal_target=True, init=str(trainer.out / 'g')))


def test_a_fresh_expert_keeps_the_prefix_and_learns_the_target_from_its_first_step(
    dataset, tmp_path
):
    plain = Trainer(params(dataset, tmp_path / 'plain', steps=4))
    start = plain.train()
    assert not plain.config.goal_target
    with pytest.raises(ConfigError, match='fresh_expert:=true'):
        Trainer(params(dataset, tmp_path / 'x', goal_target=True, init=str(start)))
    with pytest.raises(ConfigError, match='init:='):
        Trainer(params(dataset, tmp_path / 'x', fresh_expert=True))
    told = Trainer(
        params(dataset, tmp_path / 'told', goal_target=True, fresh_expert=True, init=str(start))
    )
    assert told.config.goal_target
    before, after = load_checkpoint(start)[0].state_dict(), told.model.state_dict()
    for name, weights in after.items():
        if name.startswith(EXPERT_PARTS):
            assert name not in before or not torch.equal(weights, before[name]), name
        else:
            assert torch.equal(weights, before[name]), name


def test_grounding_scenes_with_another_field_of_view_are_refused(dataset, tmp_path):
    doubled = grounding_scenes(tmp_path / 'doubled.npz', 4, rendered=[2 * n for n in SHAPE])
    Trainer(params(dataset, tmp_path / 'ok', grounding=doubled))  # sharper, the same view
    wide = grounding_scenes(tmp_path / 'wide.npz', 4, rendered=[SHAPE[0], 2 * SHAPE[1]])
    with pytest.raises(ConfigError, match=f'camera_size:={SHAPE[1]}x{SHAPE[0]}'):
        Trainer(params(dataset, tmp_path / 'wide', grounding=wide))


def test_a_grown_dataset_keeps_every_earlier_episode_on_its_side_of_the_split():
    train, held = split_episodes(list(range(100)), 0.2, seed=3)
    grown_train, grown_held = split_episodes(list(range(250)), 0.2, seed=3)
    assert set(train) <= set(grown_train)
    assert set(held) <= set(grown_held)
    assert 10 <= len(held) <= 30, 'about a fifth held out'
    pair = split_episodes([0, 1], 0.01, seed=3)
    assert sorted(map(len, pair)) == [1, 1], 'one held out even when the fraction rounds to none'
    assert split_episodes([7], 0.5, seed=3) == ([7], []), 'a lone episode trains'
    assert split_episodes(list(range(5)), 0.0, seed=3) == (list(range(5)), [])


def test_a_grounding_split_always_keeps_scenes_to_train_on(dataset, tmp_path):
    scenes = grounding_scenes(tmp_path / 'three.npz', scenes=3)
    trainer = Trainer(params(dataset, tmp_path / 'g', grounding=scenes, val_fraction=0.9))
    assert len(trainer.grounding) == 1
    assert len(trainer.grounding.val_scenes) == 2
