import numpy as np
import pytest

from vla_sim.experts import ArmIK
from vla_sim.experts import run_expert_episode
from vla_sim.simulation import Simulation


@pytest.fixture(scope='module')
def sim():
    return Simulation('so101', 'pick_cube', 160, 120)


def test_ik_reaches_a_top_down_pose(sim):
    sim.reset(0)
    ik = ArmIK(sim.model, sim.joint_names)
    start = sim.joint_state()[0][:5]
    target = np.array([0.22, -0.05, 0.05])
    fingers, across = np.array([0.0, 0.0, -1.0]), np.array([0.6, 0.8, 0.0])
    q = ik.solve(start, target, fingers, across)
    position, rotation = ik.site_pose(q)
    np.testing.assert_allclose(position, target, atol=1e-3)
    np.testing.assert_allclose(rotation[:, 0], fingers, atol=0.02)
    np.testing.assert_allclose(rotation[:, 1], across, atol=0.02)
    assert np.all(q >= sim.lower[:5])
    assert np.all(q <= sim.upper[:5])


@pytest.mark.parametrize('seed', [0, 1, 2, 3, 4, 5])
def test_the_expert_picks_the_asked_cube(sim, seed):
    outcome = run_expert_episode(sim, seed)
    assert outcome.success, f'seed {seed}: {sim.instruction}'
    assert not outcome.wrong_object
    assert outcome.lifted == (sim.task.target,)
