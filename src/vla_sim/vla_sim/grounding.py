"""Render grounding scenes: seeded scenes labelled with the grasp pose of every object.

Each scene is a task reset, with the arm somewhere on the scripted expert's way to one of
the objects (a time drawn up to `approach_s`, and never past the start of its descent), so
the labels hold from the poses a policy passes through, not only from home. The labels are
the expert's grasp for each object the instruction can name, planned before the arm moves.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import cv2
import numpy as np

from vla_common.errors import ConfigError
from vla_common.grounding import GroundingScenes
from vla_sim.experts import expert_for
from vla_sim.experts import grasp_pose
from vla_sim.rendering import SimCameras
from vla_sim.simulation import Simulation


def descent_start(expert) -> float:
    """When the expert's hand first moves down: later it may touch the cubes the labels saw."""
    waypoints = expert.tracks[0].waypoints
    for before, after in itertools.pairwise(waypoints):
        if after.position[2] < before.position[2] - 1e-3:
            return before.time
    return waypoints[-1].time


def render_grounding_scenes(
    sim: Simulation,
    scenes: int,
    first_seed: int,
    camera_shapes: dict[str, tuple[int, int]],
    image_size: tuple[int, int],
    approach_s: float,
    fps: float = 30.0,
    progress: Callable[[int], None] = lambda done: None,
) -> GroundingScenes:
    """`scenes` scenes from `first_seed` on, images resized to `image_size` (height, width)."""
    choices = getattr(sim.task, 'choices', [])
    if len(choices) < 2:
        raise ConfigError(
            f'task {sim.task.name!r} names no choice of objects in its instruction: '
            'nothing to ground'
        )
    names = list(sim.joint_names)
    images, instructions, grasps = [], [], []
    with SimCameras(sim, camera_shapes) as cameras:
        for seed in range(first_seed, first_seed + scenes):
            sim.reset(seed)
            rng = np.random.default_rng([seed, 11])
            labels = {}
            for choice in choices:
                sim.task.target = choice
                labels[choice] = (sim.task.instruction, grasp_pose(sim))
            sim.task.target = choices[int(rng.integers(len(choices)))]
            expert = expert_for(sim)
            until, t = rng.uniform(0.0, min(approach_s, descent_start(expert))), 0.0
            while t < until:
                sim.command(names, np.clip(expert.targets(t), sim.lower, sim.upper))
                sim.step(1.0 / fps)
                t += 1.0 / fps
            frames = cameras.render()
            images.append(
                [
                    cv2.resize(frames[c], image_size[::-1], interpolation=cv2.INTER_AREA)
                    for c in camera_shapes
                ]
            )
            instructions.append([labels[c][0] for c in choices])
            grasps.append([labels[c][1] for c in choices])
            progress(seed - first_seed + 1)
    return GroundingScenes(
        robot=sim.robot,
        task=sim.task.name,
        joint_names=names,
        cameras=list(camera_shapes),
        images=np.asarray(images, dtype=np.uint8),
        instructions=np.asarray(instructions),
        grasps=np.asarray(grasps, dtype=np.float32),
        seeds=np.arange(first_seed, first_seed + scenes),
        rendered_shapes=np.array([camera_shapes[c] for c in camera_shapes], dtype=np.int64),
    )
