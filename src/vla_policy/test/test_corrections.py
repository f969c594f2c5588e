"""`vla corrections`: a policy's attempts taken over by the expert, the takeovers recorded."""

from __future__ import annotations

import numpy as np
import pytest
from test_train import write_dataset

from vla_bringup.corrections import CORRECTION_ARGUMENTS
from vla_bringup.corrections import record_corrections
from vla_common.errors import ConfigError
from vla_common.params import resolve
from vla_policy.data import LeRobotDataset
from vla_sim.simulation import ROBOT_MODELS


def test_takeovers_are_appended_from_where_the_policy_left_the_arm(checkpoint, tmp_path):
    root = write_dataset(tmp_path / 'dataset', episodes=1, length=20, shape=(120, 160))
    lines = []
    arguments = {
        'checkpoint': str(checkpoint),
        'dataset': str(root),
        'episodes': 2,
        'takeover_min_s': 0.5,
        'takeover_max_s': 1.0,
        'threads': 1,
    }
    counts = record_corrections(resolve(CORRECTION_ARGUMENTS, arguments), lines.append)
    assert counts == {'kept': 2, 'takeover failed': 0, 'policy succeeded': 0}, lines
    data = LeRobotDataset(root)
    assert len(data.episodes) == 3
    assert data.episodes[0].length == 20, 'the episode already there is kept as it was'
    home = np.array(ROBOT_MODELS['so101'].home)
    for episode in data.episodes[1:]:
        first = data.states[episode.start]
        assert np.abs(first - home).max() > 0.02, 'recorded from the takeover, not from home'
        gripper = data.actions[episode.start : episode.start + episode.length, -1]
        assert gripper.max() > 1.0, 'it opens'
        assert gripper[-1] < 0.0, 'then grasps'
        assert data.tasks[data.task_index[episode.start]].startswith('pick up the')
        assert episode.length > 100  # seconds of expert at 30 fps
    assert all(' taken over at ' in line for line in lines[:2]), lines


def test_a_task_without_a_takeover_expert_is_refused_by_name(checkpoint, tmp_path):
    arguments = {'checkpoint': str(checkpoint), 'dataset': str(tmp_path / 'd'), 'robot': 'aloha'}
    with pytest.raises(ConfigError, match='transfer_cube'):
        record_corrections(resolve(CORRECTION_ARGUMENTS, arguments))
