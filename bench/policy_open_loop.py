"""How precisely does a checkpoint plan the SO-101 grasp on recorded frames? Open loop, no sim.

    source env.sh && python bench/policy_open_loop.py DATASET CHECKPOINT [CHECKPOINT ...]

For each episode, at frames a few steps before the expert commands the gripper shut, the
policy infers a chunk from the recorded images, state and instruction; the chunk's action
for the moment of that close is put through the arm's forward kinematics and compared with
the expert's: the distance between the two grasp sites (mm). The episodes held out of training
(`vla train`'s split: same val_fraction and seed) and as many training episodes are scored.
The states are the expert's, so this is the model's precision without compounding errors: a
checkpoint that fails here cannot pick, one that passes may still drift closed loop
(`bench/policy_closed_loop.py`).
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from vla_common.robot_config import load_robot_config
from vla_policy.checkpoint import load_checkpoint
from vla_policy.data import LeRobotDataset
from vla_policy.data import frame_cache
from vla_policy.data import next_grasp_rows
from vla_policy.data import split_episodes
from vla_policy.inference import PolicyRunner
from vla_policy.model import Observation
from vla_policy.train import cache_dir
from vla_sim.experts import SITE
from vla_sim.experts import ArmIK
from vla_sim.simulation import Simulation

BEFORE = (5, 15, 25, 35, 45)
"""Frames before the close at which the policy plans (30 fps: 0.17 to 1.5 s ahead)."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('dataset')
    parser.add_argument('checkpoints', nargs='+')
    parser.add_argument('--val-fraction', type=float, default=0.1)
    parser.add_argument('--split-seed', type=int, default=0)
    parser.add_argument(
        '--noise-scale', type=float, default=1.0, help='scale of the flow noise (0: its mean)'
    )
    parser.add_argument('--threads', type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = LeRobotDataset(args.dataset)
    train, val = split_episodes(data.episodes, args.val_fraction, args.split_seed)
    grippers = [i for i, n in enumerate(data.action_names) if 'gripper' in n]
    closes = next_grasp_rows(data.actions, data.episodes, grippers)
    sim = Simulation('so101', 'pick_cube', 64, 48)
    arm = [n for n in sim.joint_names if n != 'gripper']
    ik = ArmIK(sim.model, arm, SITE)
    robot = load_robot_config('so101')
    print(f'{args.dataset}: {len(val)} held-out and {len(val)} training episodes')
    for checkpoint in args.checkpoints:
        model, normalizer = load_checkpoint(checkpoint, robot)
        config = model.config
        joints = [config.joint_names.index(n) for n in arm]
        frames = frame_cache(data, config.cameras, config.image_size, cache_dir())
        runner = PolicyRunner(model, normalizer, seed=0)
        errors: dict[tuple[str, int], list[float]] = {}
        for split, episodes in (('held out', val), ('training', train[: len(val)])):
            for episode in episodes:
                close = int(closes[episode.start])
                if close < 0:
                    continue
                wanted = ik.site_pose(data.actions[close, joints])[0]
                for before in BEFORE:
                    row = close - before
                    if row < episode.start:
                        continue
                    language, mask = runner.instruction_features(data.tasks[data.task_index[row]])
                    images = torch.from_numpy(np.array(frames[row])).permute(0, 3, 1, 2)
                    obs = Observation(
                        language,
                        mask,
                        runner.state_tensor(data.states[row]),
                        images=images[None].float() / 255.0,
                    )
                    x = model.sample(obs, runner.noise() * args.noise_scale)
                    plan = normalizer.unnormalize_actions(
                        x[0, :, : config.action_dim].double().numpy(),
                        data.states[row],
                        config.relative_joints,
                    )
                    site = ik.site_pose(plan[before, joints])[0]
                    errors.setdefault((split, before), []).append(
                        float(np.linalg.norm(site - wanted)) * 1e3
                    )
        print(f'{checkpoint} (noise x{args.noise_scale:g}): planned grasp site off the expert')
        for (split, before), values in errors.items():
            print(
                f'  {split:8s} {before:2d} frames before the close: median'
                f' {np.median(values):5.1f} mm, p90 {np.percentile(values, 90):5.1f} mm'
                f' ({len(values)} episodes)',
                flush=True,
            )


if __name__ == '__main__':
    main()
