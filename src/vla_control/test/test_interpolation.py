import numpy as np
import pytest

from vla_control.interpolation import Interpolation
from vla_control.interpolation import sample

TIMES = np.array([0.0, 1.0, 2.0, 4.0])
POSITIONS = np.array([[0.0], [1.0], [0.0], [2.0]])


@pytest.mark.parametrize('method', list(Interpolation))
def test_passes_through_knots_and_holds_outside(method):
    for t, q in zip(TIMES, POSITIONS, strict=True):
        np.testing.assert_allclose(sample(TIMES, POSITIONS, t, method)[0], q)
    before, velocity = sample(TIMES, POSITIONS, -1.0, method)
    np.testing.assert_array_equal(before, [0.0])
    np.testing.assert_array_equal(velocity, [0.0])
    np.testing.assert_array_equal(sample(TIMES, POSITIONS, 9.0, method)[0], [2.0])


def test_linear_midpoint_and_slope():
    q, qd = sample(TIMES, POSITIONS, 3.0, Interpolation.LINEAR)
    np.testing.assert_allclose(q, [1.0])
    np.testing.assert_allclose(qd, [1.0])


def test_cubic_velocity_is_continuous_at_knots_and_matches_the_position():
    eps = 1e-6
    for knot in (1.0, 2.0):
        left = sample(TIMES, POSITIONS, knot - eps, Interpolation.CUBIC)[1]
        right = sample(TIMES, POSITIONS, knot + eps, Interpolation.CUBIC)[1]
        np.testing.assert_allclose(left, right, atol=1e-4)
    for t in (0.3, 1.5, 3.2):
        q_minus = sample(TIMES, POSITIONS, t - eps, Interpolation.CUBIC)[0]
        q_plus = sample(TIMES, POSITIONS, t + eps, Interpolation.CUBIC)[0]
        numeric = (q_plus - q_minus) / (2 * eps)
        np.testing.assert_allclose(
            sample(TIMES, POSITIONS, t, Interpolation.CUBIC)[1], numeric, atol=1e-5
        )


def test_cubic_reproduces_a_straight_line():
    times = np.array([0.0, 0.1, 0.2, 0.3])
    positions = np.array([[0.0, 1.0], [0.2, 0.9], [0.4, 0.8], [0.6, 0.7]])
    q, qd = sample(times, positions, 0.15, Interpolation.CUBIC)
    np.testing.assert_allclose(q, [0.3, 0.85])
    np.testing.assert_allclose(qd, [2.0, -1.0])
