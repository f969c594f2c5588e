"""A checkpoint closed-loop in simulation without ROS: the policy's own upper bound.

    source env.sh && python bench/policy_closed_loop.py CHECKPOINT [--episodes 12] [--seed 10000]

The sim core and the policy runner in one process, in simulated time: every `--replan` steps
the cameras render at the checkpoint's sizes, the policy infers a chunk from the instruction,
the images and the joint state, and its targets are sent one per 1/fps. No controller, no
transport, no latency: what fails here is the policy. Much faster than `vla eval` (no real-time
pacing), so it ranks checkpoints; the numbers to report come from `vla eval` through the graph.

For a task that names one of several objects (SO-101 pick_cube) it also says where the policy
first closed the gripper: which cube was nearest the gripper there, and how far (in the
table's plane) from the point where the scripted expert grasps the asked one. Those show
progress before any pick succeeds.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from vla_common.robot_config import load_robot_config
from vla_policy.checkpoint import load_checkpoint
from vla_policy.inference import PolicyRunner
from vla_sim.experts import SITE
from vla_sim.experts import expert_for
from vla_sim.rendering import SimCameras
from vla_sim.simulation import Simulation

CLOSING_RAD = 0.3  # a gripper target below this has the pads about a cube's width apart
SETTLE_S = 1.0  # a close before this is the home pose's gripper, not a grasp


class FirstClose:
    """Where the gripper is when the policy first commands it shut on a cube."""

    def __init__(self, sim: Simulation, gripper: int) -> None:
        self.sim, self.gripper, self.site = sim, gripper, sim.model.site(SITE).id
        self.grasp_point = expert_for(sim).grasp_goal().at
        self.where: np.ndarray | None = None

    def update(self, targets: np.ndarray) -> None:
        if self.where is None and targets[self.gripper] < CLOSING_RAD and self.sim.time > SETTLE_S:
            self.where = self.sim.data.site_xpos[self.site].copy()

    def report(self) -> tuple[str, float]:
        """The cube nearest the gripper at the close (or now, without one), and cm off."""
        task, where = self.sim.task, self.where
        if where is None:
            where = self.sim.data.site_xpos[self.site]
        apart = {
            c: np.linalg.norm((where - task.cube_position(self.sim.data, c))[:2])
            for c in task.choices
        }
        return min(apart, key=apart.get), 100 * float(
            np.linalg.norm((where - self.grasp_point)[:2])
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('checkpoint')
    parser.add_argument('--episodes', type=int, default=12)
    parser.add_argument('--seed', type=int, default=10000)
    parser.add_argument('--robot', default='so101')
    parser.add_argument('--task', default='')
    parser.add_argument('--replan', type=int, default=15, help='chunk steps run per inference')
    parser.add_argument('--timeout', type=float, default=15.0, help='simulated seconds')
    parser.add_argument(
        '--noise-scale', type=float, default=1.0, help='scale of the flow noise (0: its mean)'
    )
    parser.add_argument('--threads', type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model, norm = load_checkpoint(args.checkpoint, load_robot_config(args.robot))
    config = model.config
    runner = PolicyRunner(model, norm, seed=0)
    noise = runner.noise
    runner.noise = lambda: noise() * args.noise_scale
    sim = Simulation(args.robot, args.task or None)
    order = [sim.joint_names.index(n) for n in config.joint_names]
    period = 1.0 / config.fps
    images = SimCameras(sim, config.camera_shapes)
    results, closes = [], []
    choices = bool(getattr(sim.task, 'choices', None))
    for k in range(args.episodes):
        seed = args.seed + k
        instruction = sim.reset(seed)
        runner.generator.manual_seed(seed)  # the same noise per scene, whichever ran before
        began, outcome = time.perf_counter(), None
        close = FirstClose(sim, config.joint_names.index('gripper')) if choices else None
        while sim.time < args.timeout and not (
            outcome and (outcome.success or outcome.wrong_object)
        ):
            state = sim.joint_state()[0][order]
            chunk = runner.infer(images.render(), state, instruction)
            for target in chunk.actions[: args.replan]:
                targets = np.clip(target, sim.lower[order], sim.upper[order])
                sim.command(config.joint_names, targets)
                if close:
                    close.update(targets)
                outcome = sim.step(period)
                if outcome.success or outcome.wrong_object:
                    break
        results.append((instruction, outcome.success, outcome.wrong_object, sim.time))
        where = ''
        if close:
            nearest, off = close.report()
            closes.append((nearest == sim.task.target, off))
            shut = 'closed' if close.where is not None else 'never closed; now'
            where = f'; {shut} {off:.1f} cm off the grasp point, nearest the {nearest} cube'
        print(
            f'seed {seed} "{instruction}": '
            + ('success' if outcome.success else 'wrong object' if outcome.wrong_object else 'no')
            + f' at {sim.time:.1f} s sim ({time.perf_counter() - began:.0f} s wall){where}',
            flush=True,
        )
    images.close()
    success = np.mean([r[1] for r in results])
    wrong = np.mean([r[2] for r in results])
    print(f'{args.checkpoint}: success {success:.0%}, wrong object {wrong:.0%} of {len(results)}')
    if closes:
        asked = sum(c[0] for c in closes)
        print(
            f'first close: the asked cube nearest in {asked} of {len(closes)}; off the grasp '
            f'point, median {np.median([c[1] for c in closes]):.1f} cm'
        )


if __name__ == '__main__':
    main()
