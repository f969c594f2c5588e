"""The Gazebo files (a ROS install runs them; here they are parsed and checked against MuJoCo)."""

import math
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from vla_sim.gazebo import camera_sizes
from vla_sim.gazebo import gazebo_urdf
from vla_sim.gazebo import gazebo_world
from vla_sim.gazebo import write_world
from vla_sim.scene import CUBE_COLOURS
from vla_sim.scene import SO101_CAMERAS
from vla_sim.simulation import Simulation


def pose(element):
    """Position and rotation matrix of an SDF <pose> (x y z roll pitch yaw, fixed axes)."""
    x, y, z, roll, pitch, yaw = map(float, element.find('pose').text.split())
    cr, sr, cp, sp, cy, sy = (f(a) for a in (roll, pitch, yaw) for f in (math.cos, math.sin))
    rx = np.array([[1, 0, 0], [0, cr, -sr], [0, sr, cr]])
    ry = np.array([[cp, 0, sp], [0, 1, 0], [-sp, 0, cp]])
    rz = np.array([[cy, -sy, 0], [sy, cy, 0], [0, 0, 1]])
    return np.array([x, y, z]), rz @ ry @ rx


def test_the_world_has_the_mujoco_tabletop_and_renders_sensors(tmp_path):
    world = ET.fromstring(gazebo_world('so101')).find('world')
    plugins = {p.get('name'): p for p in world.findall('plugin')}
    assert plugins['gz::sim::systems::Sensors'].find('render_engine').text == 'ogre2'
    models = {m.get('name'): m for m in world.findall('model')}
    for colour, rgba in CUBE_COLOURS.items():
        cube = models[f'cube_{colour}']
        diffuse = cube.find('link/visual/material/diffuse').text.split()
        np.testing.assert_allclose([float(v) for v in diffuse[:3]], rgba[:3])
        assert cube.find('static') is None, 'cubes can be picked up'
    assert write_world('so101', tmp_path).read_text() == gazebo_world('so101')


def test_fixed_cameras_look_where_the_mujoco_ones_do():
    world = ET.fromstring(gazebo_world('so101')).find('world')
    sensors = {s.get('name'): s for s in world.iter('sensor')}
    assert set(sensors) == {'front'}, 'the cameras of the robot config; wrist is on the arm'
    front = next(c for c in SO101_CAMERAS if c.name == 'front')
    sensor = sensors['front']
    position, rotation = pose(sensor)
    np.testing.assert_allclose(position, front.pos, atol=1e-6)
    direction = np.subtract(front.target, front.pos)
    np.testing.assert_allclose(rotation[:, 0], direction / np.linalg.norm(direction), atol=1e-5)
    assert rotation[2, 2] > 0, 'upright: the image is not rolled'
    width, height, fps = camera_sizes('so101')['front']
    fovx = float(sensor.find('camera/horizontal_fov').text)
    fovy = 2 * math.atan(math.tan(fovx / 2) * height / width)
    assert math.degrees(fovy) == pytest.approx(front.fovy)
    assert sensor.find('topic').text == 'camera/front/image_raw'
    assert float(sensor.find('update_rate').text) == fps


def test_the_wrist_camera_sits_on_the_gripper_as_in_mujoco():
    urdf = ET.fromstring(gazebo_urdf('so101'))
    (mount,) = [g for g in urdf.findall('gazebo') if g.get('reference')]
    assert mount.get('reference') == 'gripper_link'
    sensor = mount.find('sensor')
    assert (sensor.get('name'), sensor.find('topic').text) == ('wrist', 'camera/wrist/image_raw')
    position, rotation = pose(sensor)
    sim = Simulation('so101', None, 64, 48)
    sim.reset(0)
    gripper = sim.data.body('gripper')
    camera = sim.data.camera('wrist')
    gripper_rotation = gripper.xmat.reshape(3, 3)
    camera_rotation = gripper_rotation.T @ camera.xmat.reshape(3, 3)
    np.testing.assert_allclose(
        position, gripper_rotation.T @ (camera.xpos - gripper.xpos), atol=1e-7
    )
    # gz cameras look along +x with z up; MuJoCo cameras along -z with y up.
    np.testing.assert_allclose(rotation[:, 0], -camera_rotation[:, 2], atol=1e-7)
    np.testing.assert_allclose(rotation[:, 2], camera_rotation[:, 1], atol=1e-7)
