import numpy as np
import pytest

from vla_common.errors import ConfigError
from vla_common.robot_config import load_robot_config
from vla_teleop.mapping import LeaderStateError
from vla_teleop.mapping import TeleopMapping
from vla_teleop.teleop import Teleop

SO101 = load_robot_config('so101')
NAMES = list(SO101['joints'])


def config_with(teleop):
    return {**SO101, 'teleop': teleop}


def test_identity_mapping_by_name_not_position():
    mapping = TeleopMapping.from_robot_config(SO101)
    reversed_names = NAMES[::-1]
    values = np.arange(len(NAMES), dtype=float)[::-1] / 10
    np.testing.assert_allclose(mapping.map(reversed_names, values), np.arange(len(NAMES)) / 10)


def test_offset_sign_scale_and_gripper_range():
    mapping = TeleopMapping.from_robot_config(
        config_with(
            {
                'joints': {
                    'shoulder_pan': {'sign': -1, 'scale': 2.0, 'offset': 0.1},
                    'elbow_flex': {'leader': 'elbow'},
                },
                'grippers': {
                    'gripper': {'leader_range': [0.0, 1.0], 'follower_range': [-0.1, 1.5]}
                },
            }
        )
    )
    names = ['shoulder_pan', 'shoulder_lift', 'elbow', 'wrist_flex', 'wrist_roll', 'gripper']
    targets = mapping.map(names, [0.2, 0.3, 0.4, 0.0, 0.0, 0.25])
    assert targets[0] == pytest.approx(0.1 - 2 * 0.2)
    assert targets[2] == pytest.approx(0.4)
    assert targets[5] == pytest.approx(-0.1 + 0.25 * 1.6)
    assert mapping.map(names, [0, 0, 0, 0, 0, 3.0])[5] == pytest.approx(1.5), 'clamped to range'


@pytest.mark.parametrize(
    ('teleop', 'message'),
    [
        ({'joints': {'elbow': {}}}, "'elbow' is not a robot joint"),
        (
            {'grippers': {'gripper': {'leader_range': [0, 0], 'follower_range': [0, 1]}}},
            'two different values',
        ),
        ({'grippers': {'gripper': {'leader_range': [0, 1]}}}, 'follower_range'),
        (
            {'grippers': {'gripper': {'leader_range': [0, 1], 'follower_range': [0, 1, 2]}}},
            'two values each',
        ),
        ({'joints': {'elbow_flex': {'scale': float('nan')}}}, 'finite'),
    ],
)
def test_bad_mappings_are_config_errors(teleop, message):
    with pytest.raises(ConfigError, match=message):
        TeleopMapping.from_robot_config(config_with(teleop))


def test_bad_leader_messages_are_rejected():
    mapping = TeleopMapping.from_robot_config(SO101)
    with pytest.raises(LeaderStateError, match="lack \\['gripper'\\]"):
        mapping.map(NAMES[:5], [0.0] * 5)
    with pytest.raises(LeaderStateError, match='NaN'):
        mapping.map(NAMES, [0.0] * 5 + [float('nan')])


def test_follower_ramps_to_a_far_leader_and_stops_when_the_leader_is_silent():
    teleop = Teleop(SO101, rate_hz=50.0, leader_timeout_s=0.2)
    zeros = [0.0] * len(NAMES)
    assert teleop.step(0.0) is None  # nothing yet
    teleop.on_state(NAMES, zeros, 0.0)
    assert teleop.status(0.0) == 'waiting for the leader'
    far = [1.0] * len(NAMES)
    teleop.on_leader(NAMES, far, 0.0)
    previous, t = np.zeros(len(NAMES)), 0.0
    for _ in range(50):
        command = teleop.step(t)
        steps = np.abs(command.position - previous)
        assert np.all(steps <= teleop.limits.velocity * teleop.dt + 1e-9), 'never a jump'
        previous = command.position
        teleop.on_state(NAMES, command.position.tolist(), t)
        teleop.on_leader(NAMES, far, t)
        t += teleop.dt
    np.testing.assert_allclose(previous, 1.0, atol=1e-6)
    teleop.on_state(NAMES, previous.tolist(), t + 0.5)  # the follower reports, the leader not
    assert teleop.step(t + 0.5) is None
    assert teleop.status(t + 0.5).startswith('leader silent')


def test_a_follower_moved_by_a_scene_reset_is_followed_from_where_it_now_is():
    teleop = Teleop(SO101, rate_hz=50.0, leader_timeout_s=0.2)
    end = np.full(len(NAMES), 0.3)
    teleop.on_state(NAMES, end.tolist(), 0.0)
    teleop.on_leader(NAMES, end.tolist(), 0.0)
    np.testing.assert_allclose(teleop.step(0.0).position, end)
    # The scene resets: follower and leader are both back at the start pose at once.
    start = np.zeros(len(NAMES))
    teleop.on_state(NAMES, start.tolist(), 0.02)
    teleop.on_leader(NAMES, start.tolist(), 0.02)
    for k in range(10):
        command = teleop.step(0.02 * (k + 1))
        np.testing.assert_allclose(command.position, start, atol=1e-9)
        teleop.on_state(NAMES, command.position.tolist(), 0.02 * (k + 1))
        teleop.on_leader(NAMES, start.tolist(), 0.02 * (k + 1))


def test_bad_rates_are_config_errors():
    with pytest.raises(ConfigError, match='rate_hz'):
        Teleop(SO101, rate_hz=0.0, leader_timeout_s=0.2)
    with pytest.raises(ConfigError, match='leader_timeout_s'):
        Teleop(SO101, rate_hz=50.0, leader_timeout_s=-1.0)
