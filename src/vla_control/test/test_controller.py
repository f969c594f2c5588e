import itertools

import numpy as np
import pytest
from hypothesis import HealthCheck
from hypothesis import event
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from conftest import make_limits
from conftest import position_gains
from vla_control.chunk import ChunkRejectedError
from vla_control.controller import Controller
from vla_control.controller import ControllerConfig
from vla_control.controller import Mode
from vla_control.limits import PDGains
from vla_control.schedule import ScheduleConfig

RATE = 100.0
DT = 1.0 / RATE


def controller(merge='crossfade', n=2, **limit_kwargs):
    config = ControllerConfig(rate_hz=RATE, schedule=ScheduleConfig(merge=merge))
    return Controller(config, make_limits(n, **limit_kwargs), position_gains(n))


def send(c, now, values, stamp=None, step=0.05, sequence=None, names=('j0', 'j1')):
    values = np.asarray(values, float)
    c.on_chunk(
        sequence=c.counters.chunks_accepted + 1 if sequence is None else sequence,
        stamp=now if stamp is None else stamp,
        step=step,
        joint_names=list(names),
        horizon=len(values),
        positions=values.ravel().tolist(),
        now=now,
    )


def run(c, start, seconds, measured_follows=True):
    """Tick at RATE; the measured state follows the commands (an ideal servo)."""
    outputs, t = [], start
    for _ in range(round(seconds * RATE)):
        command = c.step(t)
        outputs.append(command)
        if command is not None and measured_follows:
            c.on_state(['j0', 'j1'], command.position.tolist(), [], t)
        t += DT
    return outputs, t


def test_no_command_until_joint_states_arrive_then_hold_at_measured():
    c = controller()
    assert c.step(0.0) is None
    assert c.mode is Mode.NO_STATE
    c.on_state(['j1', 'j0'], [0.2, 0.1], [], 0.0)  # order by name, not position
    command = c.step(0.0)
    np.testing.assert_allclose(command.position, [0.1, 0.2])
    assert c.mode is Mode.HOLDING


def test_executes_a_chunk_and_reaches_its_targets():
    c = controller()
    c.on_state(['j0', 'j1'], [0.0, 0.0], [], 0.0)
    send(c, 0.0, [[0.1 * k, -0.05 * k] for k in range(1, 11)])
    outputs, _ = run(c, 0.0, 1.0)
    assert list(c.chunk_latencies) == [0.0]
    np.testing.assert_allclose(outputs[-1].position, [1.0, -0.5], atol=1e-3)
    assert c.mode is Mode.HOLDING


def test_stale_joint_states_stop_commanding_and_resume_from_the_measured_position():
    c = controller()
    c.on_state(['j0', 'j1'], [0.0, 0.0], [], 0.0)
    send(c, 0.0, [[0.5, 0.5]] * 40)
    outputs, t = run(c, 0.0, 0.3)
    assert outputs[-1] is not None
    assert c.step(t + 0.2) is None  # 0.2 s without states > 0.1 s timeout
    assert c.mode is Mode.NO_STATE
    c.on_state(['j0', 'j1'], [-0.3, 0.4], [], t + 0.25)  # the arm was moved meanwhile
    resumed = c.step(t + 0.25)
    assert np.max(np.abs(resumed.position - [-0.3, 0.4])) <= 2.0 * DT + 1e-9


def test_estop_latches_holds_still_and_enable_resumes():
    c = controller()
    c.on_state(['j0', 'j1'], [0.0, 0.0], [], 0.0)
    send(c, 0.0, [[0.9, 0.9]] * 40)
    _, t = run(c, 0.0, 0.2)
    c.estop()
    outputs, t = run(c, t, 0.5)
    velocities = [np.abs(o.velocity).max() for o in outputs]
    assert velocities[-1] == 0.0
    assert all(b <= a + 1e-12 for a, b in itertools.pairwise(velocities))
    with pytest.raises(ChunkRejectedError, match='estop latched'):
        send(c, t, [[0.9, 0.9]] * 10)
    assert c.mode is Mode.ESTOP
    c.set_enabled(True)
    send(c, t, [[0.9, 0.9]] * 40)
    outputs, t = run(c, t, 1.0)
    np.testing.assert_allclose(outputs[-1].position, [0.9, 0.9], atol=1e-3)


def test_disabled_controller_sends_nothing_and_rejects_chunks():
    c = controller()
    c.on_state(['j0', 'j1'], [0.0, 0.0], [], 0.0)
    c.set_enabled(False)
    assert c.step(0.0) is None
    assert c.mode is Mode.DISABLED
    with pytest.raises(ChunkRejectedError, match='disabled'):
        send(c, 0.0, [[0.1, 0.1]])
    assert c.counters.chunks_rejected == 1


def test_effort_joints_get_pd_torques():
    config = ControllerConfig(rate_hz=RATE)
    gains = PDGains(
        np.array([True, False]), np.array([20.0, 0]), np.array([1.0, 0]), np.array([3.0, 0])
    )
    c = Controller(config, make_limits(2), gains)
    c.on_state(['j0', 'j1'], [0.0, 0.0], [0.0, 0.0], 0.0)
    send(c, 0.0, [[0.5, 0.5]] * 10)
    command = c.step(0.01)
    assert command.effort[0] > 0
    assert command.effort[1] == 0.0


def test_preview_obeys_the_limits():
    c = controller()
    c.on_state(['j0', 'j1'], [0.0, 0.0], [], 0.0)
    c.step(0.0)
    send(c, 0.0, [[5.0, -5.0]] * 20)
    times, points = c.preview(0.0, 1.0, 0.05)
    assert len(times) == 20
    assert np.all(np.abs(points) <= 1.0)
    assert np.all(np.abs(np.diff(points, axis=0)) <= 2.0 * 0.05 + 1e-9)


# --- properties: for any chunk stream and any measured states, outputs stay safe ---------------


def sometimes(strategy, one_in):
    """`strategy` with probability 1/one_in, else None."""
    return st.tuples(strategy, st.integers(1, one_in)).map(lambda x: x[0] if x[1] == 1 else None)


finite = st.floats(-10, 10, allow_nan=False)
chunk_event = st.tuples(
    st.just('chunk'),
    st.integers(1, 8),  # horizon
    st.floats(-0.15, 0.05),  # stamp offset from now (late by inference, or early)
    st.tuples(st.floats(0.005, 0.1), st.integers(0, 7)).map(lambda s: s[0] if s[1] else 0.0),
    st.lists(finite, min_size=16, max_size=16),
    st.sampled_from([1, 1, 1, 2, 0, -1]),  # sequence increment (<= 0 is out of order)
    sometimes(st.sampled_from([float('nan'), float('inf')]), 8),  # a value to corrupt
)
state_event = st.tuples(st.just('state'), st.lists(finite, min_size=2, max_size=2))
tick_event = st.tuples(st.just('tick'), st.integers(1, 30))
special_event = st.sampled_from([('estop',), ('enable',), ('disable',), ('stale',)])
# Rounds of: a chunk (mostly), sometimes a jump of the measured state or a special event, ticks.


rounds = st.tuples(
    sometimes(chunk_event, 1),
    sometimes(state_event, 4),
    sometimes(special_event, 20),
    tick_event,
)
events = st.lists(rounds, min_size=3, max_size=15).map(
    lambda rs: [e for r in rs for e in r if e is not None]
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events=events, merge=st.sampled_from(['replace', 'crossfade', 'temporal_ensemble']))
def test_outputs_stay_within_limits_and_never_jump(events, merge):
    c = controller(merge)
    limits = c.limits
    t, sequence, previous, executing = 0.0, 0, None, 0
    measured = np.zeros(2)
    c.on_state(['j0', 'j1'], measured.tolist(), [], t)
    for item in events:
        if item[0] == 'chunk':
            _, horizon, offset, step, values, increment, corrupt = item
            sequence += increment
            if corrupt is not None:
                values[horizon % 2] = corrupt
            try:
                send(
                    c,
                    t,
                    np.array(values[: 2 * horizon]).reshape(horizon, 2),
                    stamp=t + offset,
                    step=step,
                    sequence=sequence,
                )
            except ChunkRejectedError:
                pass
        elif item[0] == 'state':
            measured = np.array(item[1])
            c.on_state(['j0', 'j1'], measured.tolist(), [], t)
        elif item[0] == 'estop':
            c.estop()
        elif item[0] in ('enable', 'disable'):
            c.set_enabled(item[0] == 'enable')
            if item[0] == 'disable':
                previous = None  # nothing is commanded until enabled: restart from measured
        elif item[0] == 'stale':
            t += 0.5
        else:
            for _ in range(item[1]):
                command = c.step(t)
                executing += c.mode is Mode.EXECUTING
                if command is None:
                    previous = None
                else:
                    q = command.position
                    assert np.all(np.isfinite(q))
                    assert np.all(q >= limits.lower)
                    assert np.all(q <= limits.upper)
                    if previous is not None:
                        assert np.all(np.abs(q - previous) <= limits.velocity * DT + 1e-9)
                    else:  # (re)started: within one step of the clipped measured position
                        start = limits.clip(measured)
                        assert np.all(np.abs(q - start) <= limits.velocity * DT + 1e-9)
                    previous = q
                c.on_state(['j0', 'j1'], measured.tolist(), [], t)
                t += DT
    event(f'ticks executing a chunk: {"some" if executing else "none"}')
