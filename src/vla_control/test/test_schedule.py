import numpy as np
import pytest

from vla_common.errors import ConfigError
from vla_control.chunk import Chunk
from vla_control.interpolation import Interpolation
from vla_control.schedule import MergeMode
from vla_control.schedule import Schedule
from vla_control.schedule import ScheduleConfig


def chunk(stamp, values, step=0.1, sequence=0):
    return Chunk(sequence, stamp, step, np.array(values, float).reshape(-1, 1))


def schedule(merge, **kwargs):
    return Schedule(ScheduleConfig(merge=merge, interpolation=Interpolation.LINEAR, **kwargs))


def q_at(s, t):
    return float(s.sample(t)[0][0])


def test_latency_compensation_skips_past_actions_and_starts_from_the_current_command():
    s = schedule(MergeMode.REPLACE)
    # Observation at 0.0, actions for 0.1 .. 0.5; it arrives at 0.25 (late by inference).
    s.add(chunk(0.0, [1, 2, 3, 4, 5]), now=0.25, current=np.array([0.0]))
    assert q_at(s, 0.25) == 0.0  # no jump at arrival
    assert q_at(s, 0.3) == pytest.approx(3.0)  # the action for 0.3, reached from the current
    assert q_at(s, 0.5) == pytest.approx(5.0)
    assert s.sample(0.51) is None  # ran out
    assert s.end() == pytest.approx(0.5)


def test_replace_follows_only_the_newest_chunk():
    s = schedule(MergeMode.REPLACE)
    s.add(chunk(0.0, [1] * 10), now=0.0, current=np.array([0.0]))
    s.add(chunk(0.2, [5] * 10, sequence=1), now=0.2, current=np.array([1.0]))
    assert q_at(s, 0.2) == 1.0
    assert q_at(s, 0.3) == pytest.approx(5.0)


def test_crossfade_blends_smoothly_from_old_to_new():
    s = schedule(MergeMode.CROSSFADE, crossfade_s=0.2)
    s.add(chunk(0.0, [1] * 20), now=0.0, current=np.array([1.0]))
    s.add(chunk(0.5, [3] * 20, sequence=1), now=0.5, current=np.array([1.0]))
    values = [q_at(s, 0.5 + dt) for dt in np.linspace(0, 0.3, 31)]
    assert values[0] == pytest.approx(1.0)
    assert values[-1] == pytest.approx(3.0)
    assert np.all(np.diff(values) >= -1e-12), 'monotone blend'
    # smoothstep over 0.2 s: at most 1.5 * 2 / 0.2 = 15 rad/s, 0.15 per 10 ms, no jump
    assert np.max(np.abs(np.diff(values))) <= 0.15 + 1e-9
    s.prune(0.8)
    assert len(s._tracks) == 1, 'the old chunk is forgotten after the window'


def test_temporal_ensemble_averages_overlapping_chunks_with_act_weights():
    s = schedule(MergeMode.TEMPORAL_ENSEMBLE, ensemble_decay=0.5)
    s.add(chunk(0.0, [1] * 10), now=0.0, current=np.array([1.0]))
    s.add(chunk(0.2, [2] * 10, sequence=1), now=0.2, current=np.array([1.0]))
    w = np.exp(-0.5 * np.arange(2))
    expected = (w[0] * 1 + w[1] * 2) / w.sum()  # the oldest weighs most
    assert q_at(s, 0.6) == pytest.approx(expected)
    assert q_at(s, 1.1) == pytest.approx(2.0)  # only the newer chunk covers 1.1
    assert s.sample(1.3) is None


def test_config_rejects_unknown_modes():
    with pytest.raises(ConfigError, match="unknown merge 'blend'; allowed: replace, crossfade"):
        ScheduleConfig(merge='blend')
    with pytest.raises(ConfigError, match='crossfade_s must be >= 0'):
        ScheduleConfig(crossfade_s=-1.0)
