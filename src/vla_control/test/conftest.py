import numpy as np
import pytest

from vla_common.robot_config import load_robot_config
from vla_control.limits import JointLimits
from vla_control.limits import PDGains


def make_limits(n=2, lower=-1.0, upper=1.0, velocity=2.0, acceleration=20.0):
    return JointLimits(
        names=tuple(f'j{i}' for i in range(n)),
        lower=np.full(n, lower),
        upper=np.full(n, upper),
        velocity=np.full(n, velocity),
        acceleration=np.full(n, acceleration),
        gripper=np.zeros(n, bool),
    )


def position_gains(n=2):
    zeros = np.zeros(n)
    return PDGains(np.zeros(n, bool), zeros, zeros, zeros)


@pytest.fixture
def so101():
    config = load_robot_config('so101')
    limits = JointLimits.from_robot_config(config)
    return config, limits, PDGains.from_robot_config(config, limits.names)
