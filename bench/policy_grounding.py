"""Does a checkpoint aim for the cube it is asked for? Its goal token's grasp guess, unseen scenes.

    source env.sh && python bench/policy_grounding.py CHECKPOINT [--scenes 20] [--seed 10000]

For each SO-101 three-cube scene (seeded as `vla eval` seeds them) and each colour, asks "pick
up the <colour> cube" at the start pose and compares the goal token's guess of the arm's pose
at its next grasp with the scripted expert's grasp pose for every cube. Prints how often the
guess is nearest the asked cube's grasp (chance: one in three) and the mean error per joint.
Nearest is judged on the joints that place the hand (not the wrist roll, which follows the
cube's random yaw, nor the gripper).
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from vla_common.robot_config import load_robot_config
from vla_policy.checkpoint import load_checkpoint
from vla_policy.inference import PolicyRunner
from vla_sim.experts import grasp_pose
from vla_sim.rendering import SimCameras
from vla_sim.scene import CUBE_COLOURS
from vla_sim.simulation import Simulation

PLACING = ['shoulder_pan', 'shoulder_lift', 'elbow_flex', 'wrist_flex']


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('checkpoint')
    parser.add_argument('--scenes', type=int, default=20)
    parser.add_argument('--seed', type=int, default=10000)
    parser.add_argument('--threads', type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model, norm = load_checkpoint(args.checkpoint, load_robot_config('so101'))
    config = model.config
    if not config.goal_token:
        raise SystemExit(f'{args.checkpoint} has no goal token')
    runner = PolicyRunner(model, norm, seed=0)
    sim = Simulation('so101', 'pick_cube')
    cameras = SimCameras(sim, config.camera_shapes)
    order = [sim.joint_names.index(n) for n in config.joint_names]
    placing = [config.joint_names.index(n) for n in PLACING]
    nearest, errors = 0, []
    for k in range(args.scenes):
        sim.reset(args.seed + k)
        images, state = cameras.render(), sim.joint_state()[0][order]
        grasps = {}
        for colour in CUBE_COLOURS:
            sim.task.target = colour
            grasps[colour] = grasp_pose(sim)[order]
        for colour in CUBE_COLOURS:
            obs = runner.observation(images, state, f'pick up the {colour} cube')
            with torch.no_grad():
                guess = model.prefix_forward(obs).goal[0, : config.action_dim]
            guess = norm.unnormalize('action', guess.double().cpu().numpy())
            distance = {c: np.linalg.norm((guess - g)[placing]) for c, g in grasps.items()}
            nearest += min(distance, key=distance.get) == colour
            errors.append(np.abs(guess - grasps[colour]))
    cameras.close()
    asked = args.scenes * len(CUBE_COLOURS)
    print(f'{args.checkpoint}: guess nearest the asked cube in {nearest} of {asked}')
    mean = np.mean(errors, axis=0)
    print(
        'mean error (rad): '
        + ', '.join(f'{n} {e:.2f}' for n, e in zip(config.joint_names, mean, strict=True))
    )


if __name__ == '__main__':
    main()
