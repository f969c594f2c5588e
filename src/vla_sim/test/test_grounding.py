"""Grounding scenes: every cube labelled with its grasp, the arm shown along approaches."""

import cv2
import numpy as np
import pytest

from vla_common.errors import ConfigError
from vla_common.grounding import GroundingScenes
from vla_sim.experts import SITE
from vla_sim.experts import ArmIK
from vla_sim.grounding import render_grounding_scenes
from vla_sim.rendering import SimCameras
from vla_sim.simulation import Simulation

SHAPES = {'front': (120, 160), 'wrist': (120, 160)}


def test_each_scene_labels_the_grasp_of_every_cube_seen_from_along_an_approach(tmp_path):
    sim = Simulation('so101', 'pick_cube', 160, 120)
    scenes = render_grounding_scenes(sim, 4, 20000, SHAPES, (64, 64), approach_s=2.5)
    assert scenes.images.shape == (4, 2, 64, 64, 3)
    ik = ArmIK(sim.model, sim.joint_names[:5], SITE)
    moved = 0
    for s, seed in enumerate(scenes.seeds):
        sim.reset(int(seed))  # the cubes where the scene had them, the arm at home
        cubes = {c: sim.task.cube_position(sim.data, c)[:2] for c in sim.task.choices}
        for k, colour in enumerate(sim.task.choices):
            assert scenes.instructions[s, k] == f'pick up the {colour} cube'
            site = ik.site_pose(scenes.grasps[s, k, :5])[0][:2]
            off = {c: np.linalg.norm(site - xy) for c, xy in cubes.items()}
            assert min(off, key=off.get) == colour, f'scene {seed}: {colour} label is off {off}'
            assert off[colour] < 0.03
        with SimCameras(sim, {'wrist': SHAPES['wrist']}) as camera:
            home = cv2.resize(camera.render()['wrist'], (64, 64), interpolation=cv2.INTER_AREA)
        moved += np.abs(home.astype(int) - scenes.images[s, 1]).mean() > 5
    assert moved >= 3, 'the wrist camera shows the arm on its way, not only at home'
    loaded = GroundingScenes.load(scenes.save(tmp_path / 'scenes.npz'))
    np.testing.assert_array_equal(loaded.grasps, scenes.grasps)
    assert (loaded.robot, loaded.task, loaded.cameras) == ('so101', 'pick_cube', list(SHAPES))


def test_a_task_whose_instruction_names_no_choice_is_refused():
    sim = Simulation('aloha', 'transfer_cube', 160, 120)
    with pytest.raises(ConfigError, match='transfer_cube'):
        render_grounding_scenes(sim, 1, 0, {'top': (120, 160)}, (64, 64), approach_s=1.0)
