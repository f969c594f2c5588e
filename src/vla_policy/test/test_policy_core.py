"""The policy node's ROS-free core: observation snapshots and chunk alignment."""

import numpy as np
import pytest

from vla_policy.inference import ObservationError
from vla_policy.policy import ObservationBuffer
from vla_policy.policy import align_previous
from vla_policy.policy import delay_steps


def buffer() -> ObservationBuffer:
    return ObservationBuffer(['front', 'wrist'], ['a', 'b'], 0.5, 0.2)


def test_snapshot_has_the_latest_of_everything_in_the_policy_joint_order():
    b = buffer()
    b.instruction = 'go'
    image = np.zeros((4, 4, 3), np.uint8)
    b.on_image('front', image, 10.0)
    b.on_image('wrist', image + 1, 10.1)
    b.on_state(['b', 'x', 'a'], [2.0, 9.0, 1.0], 10.15)
    snap = b.snapshot(10.2)
    assert snap.state.tolist() == [1.0, 2.0]
    assert snap.stamp == 10.15
    assert snap.images['wrist'][0, 0, 0] == 1


def test_snapshot_lists_every_missing_or_stale_input():
    b = buffer()
    with pytest.raises(ObservationError) as error:
        b.snapshot(1.0)
    for text in ('no instruction', 'no image from camera front', 'no joint_states'):
        assert text in str(error.value)
    b.instruction = 'go'
    b.on_image('front', np.zeros((4, 4, 3), np.uint8), 0.0)
    b.on_image('wrist', np.zeros((4, 4, 3), np.uint8), 0.9)
    b.on_state(['a', 'b'], [0.0, 0.0], 0.5)
    with pytest.raises(ObservationError) as error:
        b.snapshot(1.0)
    assert 'camera front image is 1.00 s old (limit 0.5 s)' in str(error.value)
    assert 'joint_states are 0.50 s old' in str(error.value)
    assert 'wrist' not in str(error.value)


def test_joint_states_without_the_policy_joints_are_refused():
    with pytest.raises(ObservationError, match='lacks b'):
        buffer().on_state(['a'], [0.0], 0.0)
    with pytest.raises(ObservationError, match='unequal length'):
        buffer().on_state(['a', 'b'], [0.0], 0.0)


def test_previous_chunk_alignment_follows_the_chunk_time_contract():
    previous = np.arange(10.0)[:, None]
    # Chunk stamped 1.0 at 10 Hz: action i is for 1.0 + (i + 1) * 0.1. A chunk stamped 1.3
    # starts (its action 0, for 1.4) at the previous chunk's action 3.
    assert align_previous(previous, 1.0, 0.1, 1.3)[:, 0].tolist() == [3, 4, 5, 6, 7, 8, 9]
    assert len(align_previous(previous, 1.0, 0.1, 2.5)) == 0
    assert len(align_previous(previous, 1.0, 0.1, 0.5)) == 0  # clock went back: no guidance
    assert delay_steps(0.25, 0.1) == 3
    assert delay_steps(0.0, 0.1) == 0
