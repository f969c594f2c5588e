import numpy as np
import pytest

from vla_control.chunk import ChunkChecks
from vla_control.chunk import ChunkRejectedError
from vla_control.chunk import validate_chunk

JOINTS = ('a', 'b')
GOOD = {
    'sequence': 5,
    'stamp': 10.0,
    'step': 0.1,
    'joint_names': ['b', 'a'],
    'horizon': 3,
    'positions': [0.1, 1.1, 0.2, 1.2, 0.3, 1.3],
}


def check(**changes):
    fields = {**GOOD, **changes}
    return validate_chunk(
        **fields, joints=JOINTS, last_sequence=4, now=10.05, checks=ChunkChecks()
    )


def test_columns_are_reordered_by_name_and_times_follow_the_contract():
    chunk = check()
    np.testing.assert_array_equal(chunk.positions, [[1.1, 0.1], [1.2, 0.2], [1.3, 0.3]])
    np.testing.assert_allclose(chunk.times, [10.1, 10.2, 10.3])


@pytest.mark.parametrize(
    ('changes', 'reason'),
    [
        ({'sequence': 4}, 'not after the last accepted 4'),
        ({'step': 0.0}, 'step must be > 0'),
        ({'step': -0.1}, 'step must be > 0'),
        ({'step': float('nan')}, 'step must be > 0'),
        ({'horizon': 0, 'positions': []}, 'horizon must be >= 1'),
        ({'positions': [0.1] * 5}, '5 positions, expected horizon\\*joints = 3\\*2'),
        ({'positions': [0.1, float('nan'), 0, 0, 0, 0]}, 'NaN or inf'),
        ({'positions': [0.1, float('inf'), 0, 0, 0, 0]}, 'NaN or inf'),
        ({'joint_names': ['a', 'c']}, "unknown \\['c'\\] missing \\['b'\\]"),
        ({'joint_names': ['a'], 'positions': [0.1, 0.2, 0.3]}, "missing \\['b'\\]"),
        ({'joint_names': ['a', 'a']}, 'duplicate joint names'),
        ({'stamp': 11.0}, 'in the future'),
        ({'stamp': 5.0}, 's old'),
        ({'stamp': 9.7}, 'every action is in the past'),
        ({'stamp': float('inf')}, 'future|not finite'),
    ],
)
def test_bad_chunks_are_rejected_with_the_reason(changes, reason):
    with pytest.raises(ChunkRejectedError, match=reason):
        check(**changes)
