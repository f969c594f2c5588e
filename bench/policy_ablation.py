"""What a trained policy's first decision depends on: the image, the instruction, or neither.

    source env.sh && python bench/policy_ablation.py CHECKPOINT DATASET [--episodes 12]

For the first frame of each episode, the base rotation (shoulder_pan) the policy predicts 40
steps ahead, against the expert's, with the episode's own images, another episode's images,
black images, and the instruction naming another colour. A policy that reads the scene follows
the expert; one that averages predicts about the same whatever it is shown.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from vla_common.robot_config import load_robot_config
from vla_policy.checkpoint import load_checkpoint
from vla_policy.data import LeRobotDataset
from vla_policy.inference import PolicyRunner

COLOURS = ('red', 'green', 'blue')
AHEAD = 40  # chunk step compared: about 1.3 s at 30 fps, when the expert has turned


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('checkpoint')
    parser.add_argument('dataset')
    parser.add_argument('--episodes', type=int, default=12)
    parser.add_argument('--robot', default='so101')
    args = parser.parse_args()
    torch.set_num_threads(1)
    model, norm = load_checkpoint(args.checkpoint, load_robot_config(args.robot))
    data = LeRobotDataset(args.dataset)
    episodes = data.episodes[: args.episodes]
    shapes = model.config.camera_shapes  # the size each camera was trained at
    first = {
        ep.index: {c: data.decode_episode(ep, c, shapes[c][:2])[0] for c in model.config.cameras}
        for ep in episodes
    }

    def pan(images, state, text):
        return PolicyRunner(model, norm, seed=0).infer(images, state, text).actions[AHEAD, 0]

    rows = []
    for k, ep in enumerate(episodes):
        task = data.tasks[data.task_index[ep.start]]
        state, images = data.states[ep.start], first[ep.index]
        other = episodes[(k + len(episodes) // 2) % len(episodes)]
        colour = next(c for c in COLOURS if c in task)
        other_text = task.replace(colour, COLOURS[(COLOURS.index(colour) + 1) % 3])
        row = (
            data.actions[ep.start + AHEAD, 0],
            pan(images, state, task),
            pan(first[other.index], state, task),
            pan({c: np.zeros_like(i) for c, i in images.items()}, state, task),
            pan(images, state, other_text),
        )
        rows.append(row)
        print(
            f'{task:24} expert {row[0]:+.2f} | policy: own images {row[1]:+.2f}, '
            f"other episode's {row[2]:+.2f}, black {row[3]:+.2f}, other colour {row[4]:+.2f}"
        )
    r = np.array(rows)
    print(
        f'correlation with the expert: {np.corrcoef(r[:, 0], r[:, 1])[0, 1]:.2f}; '
        f'mean |pan|: expert {np.abs(r[:, 0]).mean():.2f}, policy {np.abs(r[:, 1]).mean():.2f}; '
        f'mean change from: other images {np.abs(r[:, 2] - r[:, 1]).mean():.2f}, '
        f'black {np.abs(r[:, 3] - r[:, 1]).mean():.2f}, '
        f'other colour {np.abs(r[:, 4] - r[:, 1]).mean():.2f}'
    )


if __name__ == '__main__':
    main()
