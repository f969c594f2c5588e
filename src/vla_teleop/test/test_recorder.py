import numpy as np
import pytest

from vla_common.errors import ConfigError
from vla_common.robot_config import load_robot_config
from vla_teleop.dataset import DatasetError
from vla_teleop.recorder import Recorder

SO101 = load_robot_config('so101')
NAMES = list(SO101['joints'])
FPS = SO101['fps']


def make(tmp_path, **kwargs):
    return Recorder(tmp_path / 'ds', SO101, ['front'], {'front': (8, 8)}, 1.0, **kwargs)


def feed(recorder, t, camera_stamp=None):
    recorder.on_state(NAMES, [t] * 6, t)
    recorder.on_action(NAMES, [t + 1] * 6, t)
    if camera_stamp is not None:
        recorder.on_image(
            'front', np.full((8, 8, 3), int(camera_stamp * FPS) % 255, np.uint8), camera_stamp
        )


def test_late_frames_are_still_recorded_in_order_and_not_repeated(tmp_path):
    recorder = make(tmp_path, latency_s=0.1)
    rng = np.random.default_rng(0)
    period = 1.0 / FPS
    frames = [k * period for k in range(200)]
    # frames arrive 5-40 ms after capture (jitter), the recorder ticks on its own clock
    arrivals = sorted((stamp + rng.uniform(0.005, 0.04), stamp) for stamp in frames)
    t, queue = 0.0, list(arrivals)
    while t < 1.0:
        while queue and queue[0][0] <= t:
            feed(recorder, queue[0][1], camera_stamp=queue.pop(0)[1])
        t += period
    recorder.start('task', t)
    while t < 5.5:
        while queue and queue[0][0] <= t:
            feed(recorder, queue[0][1], camera_stamp=queue.pop(0)[1])
        assert recorder.tick(t) is None
        t += period
    assert recorder.counters.repeated == {'front': 0}
    episode, count = recorder.stop(keep=True)
    assert (episode, count) == (0, recorder.counters.frames)


def test_a_camera_that_skips_a_frame_counts_one_repeat(tmp_path):
    recorder = make(tmp_path, latency_s=0.06)  # 1.8 frame periods: no ties
    period = 1.0 / FPS
    for k in range(30):
        feed(recorder, k * period, camera_stamp=k * period)
    t = 30 * period
    recorder.start('task', t)
    for k in range(30, 60):
        feed(recorder, k * period, camera_stamp=None if k == 45 else k * period)
        recorder.tick(k * period)
    assert recorder.counters.repeated['front'] == 1


def test_start_needs_every_source_and_a_stall_discards_the_episode(tmp_path):
    recorder = make(tmp_path)
    recorder.on_state(NAMES, [0.0] * 6, 0.0)
    with pytest.raises(DatasetError, match='no recent data from joint_command, camera front'):
        recorder.start('task', 0.2)
    feed(recorder, 0.0, camera_stamp=0.0)
    recorder.start('task', 0.2)
    assert recorder.tick(0.3) is None
    error = recorder.tick(2.0)
    assert error.startswith('episode discarded: no data from joint_states, joint_command, camera')
    assert not recorder.writer.recording
    assert recorder.writer.total_episodes == 0


def test_bad_settings():
    with pytest.raises(ConfigError, match='latency_s'):
        Recorder('/nonexistent', SO101, [], {}, stall_timeout_s=1.0, latency_s=2.0)
