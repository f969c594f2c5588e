"""`vla corrections`: DAgger in simulation. The policy acts, the scripted expert takes over.

Each episode, the policy drives a seeded scene (the sim core in simulated time, no ROS) until
a takeover time drawn from `takeover_s`; the task's takeover expert then finishes the task
from wherever the arm is, and only the takeover is recorded, as a person grabbing the leader
arm would record a correction (HG-DAgger). The policy's own runs drift centimetres off the
demonstrations, and the demonstrations never show how to come back from there: these do.
Corrections are appended to a LeRobot dataset (a copy of the training set, or a new one) and
kept only when the takeover succeeds; fine-tune on them with `vla train init:=CHECKPOINT`.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from vla_common.errors import ConfigError
from vla_common.params import Param

CORRECTION_ARGUMENTS = (
    Param('checkpoint', '', 'The policy whose attempts are corrected (checkpoint directory).'),
    Param('dataset', '', 'LeRobotDataset to append the corrections to (created if missing).'),
    Param('robot', 'so101', 'Simulated robot.'),
    Param('task', '', "Simulated task (empty: the robot's first)."),
    Param('episodes', 100, 'Scenes to run.'),
    Param(
        'seed', 3000, 'Seed of the first scene; away from vla record (0, ...) and eval (10000).'
    ),
    Param('takeover_min_s', 1.0, 'The expert takes over at a time drawn from min..max s.'),
    Param('takeover_max_s', 4.0, 'See takeover_min_s.'),
    Param('replan', 15, 'Chunk steps the policy runs per inference.'),
    Param('threads', 2, 'torch CPU threads.'),
)


def record_corrections(arguments: dict[str, Any], say=print) -> dict[str, int]:
    """Run the episodes; returns how many were kept, failed, or needed no correction."""
    import torch

    from vla_common.robot_config import load_robot_config
    from vla_policy.checkpoint import load_checkpoint
    from vla_policy.inference import PolicyRunner
    from vla_sim.experts import TAKEOVER_EXPERTS
    from vla_sim.rendering import SimCameras
    from vla_sim.simulation import Simulation
    from vla_teleop.dataset import DatasetSpec
    from vla_teleop.dataset import LeRobotDatasetWriter

    a = arguments
    if not a['checkpoint'] or not a['dataset']:
        raise ConfigError('give checkpoint:=<policy checkpoint> and dataset:=<directory>')
    if a['episodes'] < 1 or not 0 <= a['takeover_min_s'] <= a['takeover_max_s']:
        raise ConfigError('episodes must be >= 1 and 0 <= takeover_min_s <= takeover_max_s')
    sim = Simulation(a['robot'], a['task'] or None)
    if sim.task.name not in TAKEOVER_EXPERTS:
        raise ConfigError(
            f'no takeover expert for task {sim.task.name!r}; tasks with one: '
            f'{", ".join(TAKEOVER_EXPERTS)}'
        )
    torch.set_num_threads(a['threads'])
    model, normalizer = load_checkpoint(a['checkpoint'], load_robot_config(a['robot']))
    config = model.config
    names = list(sim.joint_names)
    if list(config.joint_names) != names:
        raise ConfigError(f'{a["checkpoint"]} drives {config.joint_names}, the sim has {names}')
    shapes = {camera: config.camera_shapes[camera] for camera in config.cameras}
    spec = DatasetSpec(
        fps=config.fps,
        state_names=tuple(names),
        action_names=tuple(names),
        cameras={camera: tuple(shape) for camera, shape in shapes.items()},
        robot_type=a['robot'],
    )
    writer = LeRobotDatasetWriter(a['dataset'], spec)
    runner = PolicyRunner(model, normalizer, seed=a['seed'])
    period = 1.0 / config.fps
    counts = {'kept': 0, 'takeover failed': 0, 'policy succeeded': 0}
    with SimCameras(sim, shapes) as cameras:
        for seed in range(a['seed'], a['seed'] + a['episodes']):
            began = time.perf_counter()
            instruction = sim.reset(seed)
            runner.generator.manual_seed(seed)
            takeover_at = np.random.default_rng([seed, 7]).uniform(
                a['takeover_min_s'], a['takeover_max_s']
            )
            if _policy_until(sim, runner, cameras, instruction, takeover_at, a['replan'], period):
                counts['policy succeeded'] += 1
                say(f'seed {seed}: the policy succeeded by itself, nothing to correct')
                continue
            handed_over = sim.time
            expert = TAKEOVER_EXPERTS[sim.task.name](sim)
            writer.start_episode(instruction)
            t, outcome = 0.0, None
            while (targets := expert.targets(t)) is not None:
                targets = np.clip(targets, sim.lower, sim.upper)
                writer.add_frame(sim.joint_state()[0], targets, cameras.render())
                sim.command(names, targets)
                outcome = sim.step(period)
                t += period
            if outcome is not None and outcome.success:
                frames = writer.save_episode()
                counts['kept'] += 1
                result = f'kept, {frames} frames'
            else:
                writer.discard_episode()
                counts['takeover failed'] += 1
                result = 'the takeover failed: discarded'
            say(
                f'seed {seed} "{instruction}": taken over at {handed_over:.1f} s, {result} '
                f'({time.perf_counter() - began:.0f} s)'
            )
    say(', '.join(f'{name} {count}' for name, count in counts.items()) + f' -> {a["dataset"]}')
    return counts


def _policy_until(sim, runner, cameras, instruction, takeover_at, replan, period) -> bool:
    """The policy drives until `takeover_at` s or a lifted wrong object; True: it succeeded."""
    names = list(sim.joint_names)
    while sim.time < takeover_at:
        chunk = runner.infer(cameras.render(), sim.joint_state()[0], instruction)
        for target in chunk.actions[:replan]:
            sim.command(names, np.clip(target, sim.lower, sim.upper))
            outcome = sim.step(period)
            if outcome.success:
                return True
            if outcome.wrong_object or sim.time >= takeover_at:
                return False
    return False
