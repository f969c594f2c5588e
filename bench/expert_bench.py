"""Scripted expert success rates: SO-101 pick-cube per colour, ALOHA transfer cube and insertion.

    source env.sh && python bench/expert_bench.py [--episodes 50] [--first-seed 100]
        [--delay-ms 60] [--stall-rate 0.02] [--tasks pick_cube,transfer_cube,insertion]

Runs each expert against the simulator core (no ROS) at 50 Hz on seeded resets: pick_cube
until every colour has been asked for --episodes times, the ALOHA tasks --episodes times.
Then again with the expert's targets reaching the arm --delay-ms late, as through the teleop
node (leader -> DDS -> teleop -> DDS -> sim), since an expert that steers by what it sees
can fail only when its commands lag. And once more with teleop stalls: at each 20 ms step,
with probability --stall-rate, the arm gets no new target for 60-300 ms (a starved teleop
node), then the expert's current one.
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict
from collections import deque

import numpy as np

from vla_sim.experts import expert_for
from vla_sim.simulation import Simulation

ROBOTS = {'pick_cube': 'so101', 'transfer_cube': 'aloha', 'insertion': 'aloha'}
DT = 0.02  # s: the expert's rate, as the sim node's expert_rate_hz


def run_episode(sim: Simulation, seed: int, delay_steps: int, stall_rate: float = 0.0):
    """One expert episode; returns (outcome, episode seconds)."""
    sim.reset(seed)
    expert = expert_for(sim)
    pending: deque[np.ndarray] = deque()
    stalls = np.random.default_rng(seed)
    stalled_until, step = 0, 0
    t, outcome = 0.0, None
    while (targets := expert.targets(t)) is not None:
        pending.append(np.clip(targets, sim.lower, sim.upper))
        if stall_rate and step >= stalled_until and stalls.random() < stall_rate:
            stalled_until = step + int(stalls.integers(3, 16))
        if len(pending) > delay_steps:
            target = pending.popleft()
            if step >= stalled_until:
                sim.command(list(sim.joint_names), target.tolist())
        step += 1
        outcome = sim.step(DT)
        t += DT
    return outcome, t


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--episodes', type=int, default=50, help='per colour / per ALOHA task')
    parser.add_argument('--first-seed', type=int, default=100)
    parser.add_argument('--delay-ms', type=float, default=60.0, help='0: no delayed run')
    parser.add_argument('--stall-rate', type=float, default=0.02, help='0: no run with stalls')
    parser.add_argument('--tasks', default=','.join(ROBOTS))
    args = parser.parse_args()
    runs = [(0, 0.0)]  # (delay in steps, stall rate)
    if args.delay_ms > 0:
        runs.append((round(args.delay_ms / 1000 / DT), 0.0))
    if args.stall_rate > 0:
        runs.append((0, args.stall_rate))
    print(
        f'{"task":14} {"asked":8} {"delay":>6} {"stalls":>7} {"episodes":>9} {"success":>8} '
        f'{"wrong obj":>9} {"episode":>8} {"wall":>6}'
    )
    for task in args.tasks.split(','):
        sim = Simulation(ROBOTS[task], task, 64, 48)
        for delay, stall_rate in runs:
            results: dict[str, list] = defaultdict(list)
            seed, start, duration = args.first_seed, time.perf_counter(), 0.0
            while True:
                outcome, duration = run_episode(sim, seed, delay, stall_rate)
                asked = sim.task.target if task == 'pick_cube' else 'all'
                if len(results[asked]) < args.episodes:
                    results[asked].append(outcome)
                    if not outcome.success:
                        print(
                            f'  {task} seed {seed} delay {delay * DT * 1000:.0f} ms, '
                            f'stalls {stall_rate:g}: failed'
                        )
                seed += 1
                wanted = 3 if task == 'pick_cube' else 1
                if len(results) == wanted and min(map(len, results.values())) >= args.episodes:
                    break
            wall = time.perf_counter() - start
            for asked, outcomes in sorted(results.items()):
                success = np.mean([o.success for o in outcomes]) * 100
                wrong = np.mean([o.wrong_object for o in outcomes]) * 100
                print(
                    f'{task:14} {asked:8} {delay * DT * 1000:4.0f}ms {stall_rate:7g} '
                    f'{len(outcomes):9d} {success:7.1f}% {wrong:8.1f}% {duration:7.1f}s '
                    f'{wall:5.0f}s'
                )


if __name__ == '__main__':
    main()
