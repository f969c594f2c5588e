"""The checkpoint `make run` ships (models/so101_cubes) still loads and drives the simulated arm.

It was trained before later changes to the model code; this catches a change that no longer
reads it, or reads it into a policy whose chunk leaves the arm's limits, before a user's
`make run` does.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from vla_common.robot_config import load_robot_config
from vla_policy.checkpoint import load_checkpoint
from vla_policy.inference import PolicyRunner
from vla_sim.rendering import SimCameras
from vla_sim.simulation import Simulation

SHIPPED = Path(__file__).resolve().parents[3] / 'models' / 'so101_cubes'


def test_the_shipped_policy_plans_a_chunk_from_a_rendered_scene():
    torch.set_num_threads(1)
    model, normalizer = load_checkpoint(SHIPPED, load_robot_config('so101'))
    config = model.config
    sim = Simulation('so101', None)
    instruction = sim.reset(10000)
    order = [sim.joint_names.index(n) for n in config.joint_names]
    with SimCameras(sim, config.camera_shapes) as cameras:
        frames = cameras.render()
    state = sim.joint_state()[0][order]
    chunk = PolicyRunner(model, normalizer, seed=0).infer(frames, state, instruction).actions
    assert chunk.shape == (config.chunk_length, len(config.joint_names))
    assert np.isfinite(chunk).all()
    # rad: the chunk may aim a little past a limit (its wrist ends 0.07 past at this scene: the
    # expert's grasps flex the wrist to its limit, and the controller clips), never far past,
    # as a checkpoint read with the wrong normalisation or joint order would.
    margin = 0.2
    assert (chunk >= sim.lower[order] - margin).all()
    assert (chunk <= sim.upper[order] + margin).all()
    assert np.abs(chunk[-1] - state).max() > 0.02, 'from home, the policy sets the arm moving'
