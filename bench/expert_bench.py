"""Scripted expert success rates: SO-101 pick-cube, at least 50 resets per colour.

    source env.sh && python bench/expert_bench.py [--per-colour 50] [--first-seed 100]

Runs the expert against the simulator core (no ROS) at 50 Hz, seeds in order from
--first-seed until every colour has been asked for --per-colour times.
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict

import numpy as np

from vla_sim.experts import PickCubeExpert
from vla_sim.experts import run_expert_episode
from vla_sim.simulation import Simulation

COLOURS = ('red', 'green', 'blue')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--per-colour', type=int, default=50)
    parser.add_argument('--first-seed', type=int, default=100)
    args = parser.parse_args()
    sim = Simulation('so101', 'pick_cube', 64, 48)
    results: dict[str, list] = defaultdict(list)
    seed, start = args.first_seed, time.perf_counter()
    while min(len(results[c]) for c in COLOURS) < args.per_colour:
        outcome = run_expert_episode(sim, seed)
        if len(results[sim.task.target]) < args.per_colour:
            results[sim.task.target].append(outcome)
            if not outcome.success:
                print(f'seed {seed}: {sim.instruction}: failed ({outcome})')
        seed += 1
    print(
        f'SO-101 pick_cube expert, seeds {args.first_seed}-{seed - 1}, episode '
        f'{PickCubeExpert(sim).duration:.1f} s, {time.perf_counter() - start:.0f} s wall'
    )
    print(f'{"colour":8} {"episodes":>9} {"success":>8} {"wrong object":>13}')
    for colour in COLOURS:
        outcomes = results[colour]
        success = np.mean([o.success for o in outcomes]) * 100
        wrong = np.mean([o.wrong_object for o in outcomes]) * 100
        print(f'{colour:8} {len(outcomes):9d} {success:7.1f}% {wrong:12.1f}%')


if __name__ == '__main__':
    main()
