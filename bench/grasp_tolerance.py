"""How precisely must a policy place the SO-101's grasp? The scripted expert, aimed off.

    source env.sh && python bench/grasp_tolerance.py [--episodes 12]

The pick-cube expert plans its grasp from a cube position shifted by a distance in a random
direction, or from a cube yaw turned by an angle, and the simulator judges the pick as always.
What succeeds here is the error a policy may make and still pick the cube; physics only, no
rendering, in simulated time.
"""

from __future__ import annotations

import argparse

import numpy as np

from vla_sim import experts
from vla_sim.experts import PickCubeExpert
from vla_sim.experts import run_expert_episode
from vla_sim.simulation import Simulation


class AimedOff(PickCubeExpert):
    """Plans from a cube moved by `shift` (m), turned by `turn` (rad); physics never sees it."""

    shift = np.zeros(3)
    turn = 0.0

    def make_tracks(self):
        sim, task = self.sim, self.sim.task
        adr = sim.model.jnt_qposadr[sim.model.joint(f'cube_{task.target}').id]
        pose = sim.data.qpos[adr : adr + 7].copy()
        w, _, _, z = pose[3:]
        yaw = 2.0 * np.arctan2(z, w) + self.turn
        sim.data.qpos[adr : adr + 3] += self.shift
        sim.data.qpos[adr + 3 : adr + 7] = [np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2)]
        try:
            return super().make_tracks()
        finally:
            sim.data.qpos[adr : adr + 7] = pose


def success_rate(sim: Simulation, seeds: range, rng, shift_m: float, turn_rad: float) -> float:
    wins = 0
    for seed in seeds:
        angle = rng.uniform(0.0, 2.0 * np.pi)
        AimedOff.shift = shift_m * np.array([np.cos(angle), np.sin(angle), 0.0])
        AimedOff.turn = turn_rad * rng.choice([-1.0, 1.0])
        wins += run_expert_episode(sim, seed).success
    return wins / len(seeds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--episodes', type=int, default=12)
    parser.add_argument('--seed', type=int, default=20000)
    args = parser.parse_args()
    experts.EXPERTS['pick_cube'] = AimedOff
    sim = Simulation('so101', 'pick_cube', 64, 48)
    seeds = range(args.seed, args.seed + args.episodes)
    rng = np.random.default_rng(0)
    print(f'{args.episodes} scenes each (seeds {seeds.start}-{seeds.stop - 1})')
    for shift in (0.0, 0.005, 0.01, 0.015, 0.02):
        rate = success_rate(sim, seeds, rng, shift, 0.0)
        print(f'grasp {shift * 100:4.1f} cm off the cube: {rate:4.0%} picked', flush=True)
    for turn in (0.2, 0.4, 0.8):
        rate = success_rate(sim, seeds, rng, 0.0, turn)
        print(f'grasp turned {turn:.1f} rad off the cube: {rate:4.0%} picked', flush=True)


if __name__ == '__main__':
    main()
