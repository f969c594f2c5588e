import numpy as np
import pytest

from conftest import make_limits
from vla_control.limits import PDGains
from vla_control.safety import SafetyFilter
from vla_control.safety import pd_effort

DT = 0.01


def test_position_limits_and_velocity_limit():
    f = SafetyFilter(make_limits(1, velocity=2.0, acceleration=1e6), max_deviation=10.0)
    f.reset(np.array([0.9]))
    q, _, report = f.apply(np.array([5.0]), None, DT)
    assert q[0] == pytest.approx(0.92)  # 2 rad/s * 10 ms, not the 4.1 rad asked
    assert report.position[0]
    assert report.velocity[0]
    for _ in range(100):
        q, _, _ = f.apply(np.array([5.0]), None, DT)
    assert q[0] == 1.0  # stops at the upper limit


def test_acceleration_limit_ramps_velocity():
    f = SafetyFilter(make_limits(1, velocity=10.0, acceleration=100.0), max_deviation=10.0)
    f.reset(np.array([0.0]))
    velocities = [f.apply(np.array([1.0]), None, DT)[1][0] for _ in range(5)]
    np.testing.assert_allclose(velocities[:3], [1.0, 2.0, 3.0])


def test_deviation_from_measured_is_approached_not_jumped():
    f = SafetyFilter(make_limits(1, velocity=2.0, acceleration=1e6), max_deviation=0.1)
    f.reset(np.array([0.0]))
    measured = np.array([0.5])  # the arm was pushed away
    q, _, report = f.apply(np.array([0.0]), measured, DT)
    assert report.deviation[0]
    assert q[0] == pytest.approx(0.02)  # toward measured - 0.1, at the velocity limit
    for _ in range(50):
        q, _, _ = f.apply(np.array([0.0]), measured, DT)
    assert q[0] == pytest.approx(0.4)


def test_nan_target_holds():
    f = SafetyFilter(make_limits(2, acceleration=1e6), max_deviation=1.0)
    f.reset(np.array([0.1, 0.2]))
    q, _, _ = f.apply(np.array([np.nan, 0.3]), None, DT)
    assert q[0] == pytest.approx(0.1)
    assert q[1] == pytest.approx(0.22)  # the other joint moves on, at 2 rad/s


def test_pd_effort_with_feed_forward_only_on_effort_joints():
    gains = PDGains(
        np.array([True, False]), np.array([10.0, 10.0]), np.array([2.0, 2.0]), np.array([5.0, 5.0])
    )
    effort = pd_effort(
        gains,
        np.array([0.05, 1.0]),
        np.array([0.5, 0.0]),
        np.array([0.0, 0.0]),
        np.array([0.1, 0.0]),
    )
    assert effort[0] == pytest.approx(10 * 0.05 + 2 * 0.4)
    assert effort[1] == 0.0
    saturated = pd_effort(gains, np.array([1.0, 0]), np.zeros(2), np.zeros(2), np.zeros(2))
    assert saturated[0] == 5.0
