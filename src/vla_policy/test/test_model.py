"""The model, the inference engine and checkpoints on the `tiny` preset (CPU, seconds)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vla_common.errors import ConfigError
from vla_common.robot_config import load_robot_config
from vla_policy.checkpoint import load_checkpoint
from vla_policy.checkpoint import save_checkpoint
from vla_policy.config import preset_config
from vla_policy.inference import ObservationError
from vla_policy.inference import PolicyRunner
from vla_policy.model import Guidance
from vla_policy.model import Observation
from vla_policy.model import VlaModel
from vla_policy.normalization import RELATIVE_ACTION
from vla_policy.normalization import Normalizer

torch.set_num_threads(1)


@pytest.fixture(scope='module')
def so101():
    return load_robot_config('so101')


@pytest.fixture
def model(so101):
    torch.manual_seed(0)
    return VlaModel(preset_config('tiny', so101, max_action_dim=8, max_state_dim=10)).eval()


def observation(model: VlaModel, batch: int = 2, seed: int = 0) -> Observation:
    c = model.config
    g = torch.Generator().manual_seed(seed)
    texts = ['pick red', 'pick up the blue cube'][:batch]
    language, mask = model.encode_language(texts)
    state = torch.zeros(batch, c.max_state_dim)
    state[:, : c.action_dim] = torch.randn(batch, c.action_dim, generator=g)
    images = torch.rand(batch, len(c.cameras), 3, *c.image_size, generator=g)
    return Observation(language=language, language_mask=mask, state=state, images=images)


def noise(model: VlaModel, batch: int = 2, seed: int = 1) -> torch.Tensor:
    c = model.config
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, c.chunk_length, c.max_action_dim, generator=g)


def test_shapes(model):
    c = model.config
    obs = observation(model)
    prefix = model.prefix_forward(obs)
    assert len(prefix.keys_values) == c.depth
    assert prefix.keys_values[0][0].shape == (2, c.heads, c.prefix_length, c.head_dim)
    assert prefix.mask.shape == (2, c.prefix_length)
    assert model.sample(obs, noise(model)).shape == (2, c.chunk_length, c.max_action_dim)


def test_prefix_cache_gives_the_same_actions_as_recomputing_the_prefix(model):
    obs, x = observation(model), noise(model)
    cached = model.sample(obs, x, cache_prefix=True)
    uncached = model.sample(obs, x, cache_prefix=False)
    assert torch.equal(cached, uncached)
    assert not torch.equal(cached, model.sample(observation(model, seed=5), x))


def test_padded_language_tokens_are_masked_out(model):
    obs, x = observation(model), noise(model)
    reference = model.sample(obs, x)
    assert not obs.language_mask.all()
    junk = obs.language.clone()
    junk[~obs.language_mask] = 1e3
    obs.language = junk
    assert torch.allclose(model.sample(obs, x), reference, atol=1e-5)
    obs.language_mask = torch.ones_like(obs.language_mask)  # the junk now counts
    assert not torch.allclose(model.sample(obs, x), reference, atol=1e-3)


def test_padded_action_dims_and_steps_carry_no_loss(model):
    obs = observation(model)
    c = model.config
    actions = torch.randn(2, c.chunk_length, c.max_action_dim)
    valid = torch.ones(2, c.chunk_length, dtype=torch.bool)
    valid[1] = False  # all of sample 1 lies past its episode end
    changed = actions.clone()
    changed[:, :, c.action_dim :] = 50.0  # padded joints
    changed[1] = -50.0
    loss = model.flow_loss(obs, actions, valid, torch.Generator().manual_seed(3))
    same = model.flow_loss(obs, changed, valid, torch.Generator().manual_seed(3))
    assert torch.allclose(loss, same)
    changed[0, 0, 0] = 50.0
    assert not torch.allclose(
        loss, model.flow_loss(obs, changed, valid, torch.Generator().manual_seed(3))
    )


def test_seeds(so101):
    config = preset_config('tiny', so101)
    torch.manual_seed(7)
    a = VlaModel(config).eval()
    torch.manual_seed(7)
    b = VlaModel(config).eval()
    obs = observation(a)
    assert torch.equal(a.sample(obs, noise(a)), b.sample(obs, noise(b)))
    assert not torch.equal(a.sample(obs, noise(a)), a.sample(obs, noise(a, seed=2)))


def test_training_steps_reduce_the_flow_matching_loss(model):
    torch.manual_seed(0)
    model.train()
    c = model.config
    obs = observation(model)
    # A toy batch: each sample's chunk is a fixed ramp that depends on its state.
    ramp = torch.linspace(0, 1, c.chunk_length)[None, :, None]
    actions = torch.zeros(2, c.chunk_length, c.max_action_dim)
    actions[:, :, : c.action_dim] = obs.state[:, None, : c.action_dim] * ramp
    valid = torch.ones(2, c.chunk_length, dtype=torch.bool)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(0)

    def evaluate() -> float:
        with torch.no_grad():
            e = torch.Generator().manual_seed(123)
            return float(sum(model.flow_loss(obs, actions, valid, e) for _ in range(8)) / 8)

    before = evaluate()
    for _ in range(120):
        optimizer.zero_grad()
        # Fresh language features each step: the byte embedding is trained too.
        model.flow_loss(observation(model), actions, valid, g).backward()
        optimizer.step()
    after = evaluate()
    assert after < 0.5 * before, (before, after)


def test_guidance_pulls_the_start_toward_the_previous_chunk(model):
    obs, x = observation(model, batch=1), noise(model, batch=1)
    c = model.config
    previous = torch.zeros(1, c.chunk_length, c.max_action_dim)
    previous[..., : c.action_dim] = 0.7
    free = model.sample(obs, x)
    guided = model.sample(obs, x, guidance=Guidance(previous, delay=4, available=10))
    d = c.action_dim
    free_error = (free[0, :4, :d] - 0.7).abs().mean()
    guided_error = (guided[0, :4, :d] - 0.7).abs().mean()
    assert guided_error < 0.5 * free_error, (free_error, guided_error)
    # Past `available` the previous chunk has no say.
    weights = Guidance(previous, delay=4, available=10).weights(c.chunk_length)
    assert weights[:4].eq(1).all()
    assert weights[10:].eq(0).all()
    assert (weights[4:10].diff() <= 0).all()


def images_for(config, value: int = 100) -> dict[str, np.ndarray]:
    return {
        cam: np.full((*config.camera_shapes[cam], 3), value, np.uint8) for cam in config.cameras
    }


def test_checkpoint_round_trip_and_runner(tmp_path, model, so101):
    c = model.config
    rng = np.random.default_rng(0)
    stats = {
        f: {'mean': rng.normal(size=c.action_dim), 'std': rng.uniform(0.5, 2, c.action_dim)}
        for f in ('observation.state', 'action', RELATIVE_ACTION)
    }
    normalizer = Normalizer('mean_std', stats)
    save_checkpoint(tmp_path / 'ckpt', model, normalizer)
    loaded, loaded_norm = load_checkpoint(tmp_path / 'ckpt', so101)
    state = np.linspace(-0.5, 0.5, c.action_dim)
    a = PolicyRunner(model, normalizer, seed=3).infer(images_for(c), state, 'pick up')
    b = PolicyRunner(loaded, loaded_norm, seed=3).infer(images_for(c), state, 'pick up')
    assert a.actions.shape == (c.chunk_length, c.action_dim)
    assert a.joint_names == list(so101['joints'])
    np.testing.assert_array_equal(a.actions, b.actions)
    # Saving again over it replaces it whole.
    save_checkpoint(tmp_path / 'ckpt', model, Normalizer.identity(c.action_dim))
    assert load_checkpoint(tmp_path / 'ckpt')[1].stats['action']['std'].tolist() == [1.0] * 6


def test_relative_actions_come_back_as_absolute_targets(model):
    c = model.config
    arm = np.array(c.relative_joints)
    assert arm.tolist() == [True] * 5 + [False]  # the gripper stays absolute
    normalizer = Normalizer.identity(c.action_dim)
    state = np.linspace(-0.5, 0.5, c.action_dim)
    chunk = PolicyRunner(model, normalizer, seed=3).infer(images_for(c), state, 'pick up')
    runner = PolicyRunner(model, normalizer, seed=3)
    obs = runner.observation(images_for(c), state, 'pick up')
    raw = model.sample(obs, runner.noise())[0, :, : c.action_dim].double().numpy()
    np.testing.assert_allclose(chunk.actions[:, arm], raw[:, arm] + state[arm], atol=1e-5)
    np.testing.assert_allclose(chunk.actions[:, ~arm], raw[:, ~arm], atol=1e-5)


def test_a_checkpoint_without_relative_action_statistics_is_refused(tmp_path, model):
    absolute_only = Normalizer.identity(model.config.action_dim)
    del absolute_only.stats[RELATIVE_ACTION]
    save_checkpoint(tmp_path / 'ckpt', model, absolute_only)
    with pytest.raises(ConfigError, match='no relative_action statistics'):
        load_checkpoint(tmp_path / 'ckpt')


def test_a_checkpoint_for_another_robot_is_refused_with_what_differs(tmp_path, model):
    save_checkpoint(tmp_path / 'ckpt', model, Normalizer.identity(model.config.action_dim))
    with pytest.raises(ConfigError) as error:
        load_checkpoint(tmp_path / 'ckpt', load_robot_config('aloha'))
    message = str(error.value)
    for expected in ('shoulder_pan', 'left_waist', 'camera(s) front, wrist not on', '50 fps'):
        assert expected in message, message


def test_runner_rejects_bad_observations(model):
    c = model.config
    runner = PolicyRunner(model, Normalizer.identity(c.action_dim))
    good_state = np.zeros(c.action_dim)
    cases = {
        'empty': (images_for(c), good_state, '  '),
        'no image from camera(s) wrist': (
            {k: v for k, v in images_for(c).items() if k != 'wrist'},
            good_state,
            'go',
        ),
        'trained on uint8 480x640x3': (
            {**images_for(c), 'front': np.zeros((240, 320, 3), np.uint8)},
            good_state,
            'go',
        ),
        'not finite for elbow_flex': (images_for(c), np.array([0, 0, np.nan, 0, 0, 0]), 'go'),
        'state has 5 values': (images_for(c), np.zeros(5), 'go'),
    }
    for expected, (images, state, text) in cases.items():
        with pytest.raises(
            ObservationError, match=expected.replace('(', r'\(').replace(')', r'\)')
        ):
            runner.infer(images, state, text)


def test_instruction_features_are_cached_per_string(model):
    runner = PolicyRunner(model, Normalizer.identity(model.config.action_dim))
    first = runner.instruction_features('pick up the red cube')
    assert runner.instruction_features('pick up the red cube') is first
    assert runner.instruction_features('pick up the blue cube') is not first


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA GPU')
def test_cuda_bf16_graph_matches_cpu(so101):
    torch.manual_seed(0)
    model = VlaModel(preset_config('tiny', so101)).eval()
    normalizer = Normalizer.identity(model.config.action_dim)
    c = model.config
    state = np.linspace(-0.5, 0.5, c.action_dim)
    cpu = PolicyRunner(model, normalizer, seed=0)
    reference = cpu.infer(images_for(c), state, 'pick up').actions
    gpu = PolicyRunner(VlaModel(c).to('cuda').eval(), normalizer, seed=0)
    gpu.model.load_state_dict(model.state_dict())
    # Same noise on both devices: draw on the CPU and feed it to both loops.
    for _ in range(2):  # the second call replays the captured graph
        cpu.generator.manual_seed(0)
        expected = cpu.infer(images_for(c), state, 'pick up').actions
        noise = cpu.noise().to('cuda')
        gpu.noise = lambda n=noise: n
        actions = gpu.infer(images_for(c), state, 'pick up').actions
        np.testing.assert_allclose(actions, expected, atol=0.1)
    assert reference.shape == actions.shape


def test_film_makes_image_tokens_depend_on_the_instruction(so101):
    torch.manual_seed(0)
    model = VlaModel(preset_config('tiny', so101, film=True)).eval()
    c = model.config
    plain = VlaModel(preset_config('tiny', so101)).eval()
    plain.load_state_dict({k: v for k, v in model.state_dict().items() if 'film' not in k})
    images = torch.rand(1, len(c.cameras), 3, *c.image_size).expand(2, -1, -1, -1, -1)
    language, mask = model.encode_language(['pick up the red cube', 'pick up the blue cube'])
    obs = Observation(
        language=language, language_mask=mask, state=torch.zeros(2, 6), images=images
    )
    with torch.no_grad():
        tokens = model.prefix_tokens(obs)[0]
        np.testing.assert_allclose(tokens, plain.prefix_tokens(obs)[0], atol=1e-6)  # zero init
        model.film.weight.normal_(std=0.1)
        tokens = model.prefix_tokens(obs)[0]
    image = slice(0, c.image_tokens)
    assert not torch.allclose(tokens[0, image], tokens[1, image], atol=1e-4), (
        'the same images under two instructions give different image tokens'
    )


def target_model(so101) -> VlaModel:
    torch.manual_seed(0)
    return VlaModel(preset_config('tiny', so101, goal_target=True)).eval()


def test_the_expert_is_told_the_recorded_grasp_in_training_and_the_guess_at_run_time(so101):
    model = target_model(so101)
    obs, x = observation(model), noise(model)
    guess = model.prefix_forward(obs).goal
    obs.goal = guess + 1.0
    assert torch.equal(model.sample(obs, x), model.sample(observation(model), x)), (
        'zero-initialised: a fine-tune starts from the model without the target'
    )
    torch.nn.init.normal_(model.target_in.weight)  # as training leaves it
    told = model.sample(obs, x)
    obs.goal = guess
    assert torch.allclose(model.sample(obs, x), model.sample(observation(model), x), atol=1e-5)
    assert not torch.allclose(told, model.sample(obs, x), atol=1e-3)
    assert torch.equal(model.goal_guess(obs), guess), 'the guess alone is the prefix one'
    obs.goal = guess + 1.0
    obs.goal[1] = float('nan')  # no recorded grasp: that row is told the guess
    mixed = model.sample(obs, x)
    assert torch.allclose(mixed[0], told[0], atol=1e-5)
    assert torch.allclose(mixed[1], model.sample(observation(model), x)[1], atol=1e-5)


def test_the_expert_learns_to_reach_the_pose_it_is_told(so101):
    """Chunks that head for a random pose nothing but the target shows."""
    model = target_model(so101).train()
    c = model.config
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3)
    g = torch.Generator().manual_seed(0)
    ramp = torch.linspace(0.0, 1.0, c.chunk_length)[None, :, None]

    def episode(batch):
        obs = observation(model, batch=2)
        obs = Observation(
            language=obs.language[:1].expand(batch, -1, -1),
            language_mask=obs.language_mask[:1].expand(batch, -1),
            state=torch.zeros(batch, c.max_state_dim),
            images=obs.images[:1].expand(batch, -1, -1, -1, -1),
            goal=torch.randn(batch, c.max_action_dim, generator=g),
        )
        return obs, ramp * obs.goal[:, None]

    valid = torch.ones(16, c.chunk_length, dtype=torch.bool)
    for _ in range(100):
        obs, actions = episode(16)
        loss = model.flow_loss(obs, actions, valid, g)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    obs, actions = episode(64)
    reached = model.sample(obs, noise(model, batch=64))[:, -1, : c.action_dim]
    error = (reached - obs.goal[:, : c.action_dim]).abs().mean()
    # Ignoring the target leaves the mean |N(0, 1)|, about 0.8; 100 steps reach about 0.2.
    assert error < 0.4, f'the last action misses the told pose by {error:.2f}'
