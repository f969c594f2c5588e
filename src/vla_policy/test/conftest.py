"""A policy checkpoint made by `vla train`, shared by the node and end-to-end tests."""

from __future__ import annotations

import pytest


@pytest.fixture(scope='session')
def checkpoint(tmp_path_factory):
    """A checkpoint produced by `vla train`: a few steps of the tiny preset on two cameras
    (front, wrist) of 120x160 (height x width)."""
    from test_train import write_dataset

    from vla_policy.train import Trainer
    from vla_policy.train_params import parse_arguments

    root = tmp_path_factory.mktemp('policy')
    dataset = write_dataset(root / 'dataset', episodes=2, length=20, shape=(120, 160))
    arguments = [f'dataset:={dataset}', f'output:={root / "run"}', 'preset:=tiny', 'steps:=5']
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv('VLA_CACHE_DIR', str(root / 'cache'))
        trainer = Trainer(parse_arguments([*arguments, 'batch_size:=4', 'threads:=1']))
        return trainer.train()
