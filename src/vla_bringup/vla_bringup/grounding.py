"""`vla grounding`: render grounding scenes for `vla train grounding:=` (see vla_common.grounding).

A recorded episode tells the goal token where one object of its scene is; these scenes tell
it where each of them is, from home and from poses along the expert's approaches. 1500 scenes
render in about 6 minutes on 2 CPU cores; trained with them, the goal token's guess was nearest
the asked cube in 60 of 60 unseen home-pose asks, against 45 (bench/RESULTS.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vla_bringup.graph import parse_camera_size
from vla_common.errors import ConfigError
from vla_common.params import Param
from vla_common.robot_config import load_robot_config

GROUNDING_ARGUMENTS = (
    Param('output', '', 'The .npz file to write.'),
    Param('robot', 'so101', 'Simulated robot.'),
    Param('task', '', "Simulated task (empty: the robot's first)."),
    Param('scenes', 1500, 'Scenes to render.'),
    Param('seed', 20000, 'Seed of the first scene; away from record, corrections and eval.'),
    Param('camera_size', '', 'WIDTHxHEIGHT the cameras render at (empty: the robot config).'),
    Param('image_size', 128, 'Side of the square images stored (the policy presets see 128).'),
    Param('approach_s', 2.5, 'The arm is shown up to this far into an expert approach.'),
)


def write_grounding_scenes(arguments: dict[str, Any], say=print) -> Path:
    from tqdm import tqdm

    from vla_sim.grounding import render_grounding_scenes
    from vla_sim.simulation import Simulation

    a = arguments
    if not a['output']:
        raise ConfigError('give output:=<file.npz>')
    if a['scenes'] < 1 or a['image_size'] < 1 or a['approach_s'] < 0:
        raise ConfigError('scenes and image_size must be >= 1 and approach_s >= 0')
    cameras = load_robot_config(a['robot']).get('cameras') or {}
    if a['camera_size']:
        width, height = parse_camera_size(a['camera_size'])
        shapes = dict.fromkeys(cameras, (height, width))
    else:
        shapes = {name: (c['height'], c['width']) for name, c in cameras.items()}
    if not shapes:
        raise ConfigError(f'robot {a["robot"]} has no cameras to render')
    sim = Simulation(a['robot'], a['task'] or None)
    with tqdm(total=a['scenes'], desc='grounding scenes', unit='scene') as bar:
        scenes = render_grounding_scenes(
            sim,
            a['scenes'],
            a['seed'],
            shapes,
            (a['image_size'], a['image_size']),
            a['approach_s'],
            progress=lambda done: bar.update(done - bar.n),
        )
    path = scenes.save(a['output'])
    say(
        f'{path}: {a["scenes"]} {sim.task.name} scenes, {scenes.grasps.shape[1]} objects each, '
        f'cameras {", ".join(shapes)}'
    )
    return path
