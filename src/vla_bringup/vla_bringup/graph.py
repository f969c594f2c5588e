"""The node graph of the stack: which nodes run for a robot, mode and sim flag.

One source of truth for both entry points: `launch/robot.launch.py` turns it into launch_ros
Nodes on a ROS install, and `vla bringup` starts the same nodes as processes without launch.
No rclpy or launch imports here.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any

import yaml

from vla_common.errors import ConfigError
from vla_common.params import Param
from vla_common.params import resolve
from vla_perception.camera import PARAMETERS as CAMERA_PARAMETERS
from vla_perception.camera import CameraConfig

# The arguments of robot.launch.py and `vla bringup`, with defaults.
GRAPH_ARGUMENTS = (
    Param('robot', 'so101', 'Robot: a file config/robots/<robot>.yaml (so101, so100, aloha).'),
    Param('mode', 'cameras', 'What to run: cameras.'),
    Param('sim', True, 'true: simulated robot and cameras; false: real hardware.'),
)
MODES = ('cameras',)


@dataclass(frozen=True)
class NodeSpec:
    """One node of the graph, as launch_ros.actions.Node would take it."""

    package: str
    executable: str
    name: str
    parameters: dict[str, Any] = field(default_factory=dict)
    remappings: tuple[tuple[str, str], ...] = ()
    required: bool = True  # when it exits, the whole graph stops


def config_dir() -> Path:
    """$VLA_CONFIG_DIR, else the installed `share/vla_bringup/config`, else the source tree's."""
    if os.environ.get('VLA_CONFIG_DIR'):
        return Path(os.environ['VLA_CONFIG_DIR'])
    try:
        from ament_index_python.packages import get_package_share_directory

        installed = Path(get_package_share_directory('vla_bringup')) / 'config'
        if installed.is_dir():
            return installed
    except (ImportError, LookupError):
        pass
    # Editable install: src/vla_bringup/config is a symlink to the top-level config/.
    return Path(__file__).resolve().parents[1] / 'config'


def parse_arguments(raw: Mapping[str, str]) -> dict[str, Any]:
    """Turn `name:=value` strings into typed graph arguments (unknown names are errors)."""
    typed: dict[str, Any] = {}
    defaults = {p.name: p.default for p in GRAPH_ARGUMENTS}
    for name, text in raw.items():
        if isinstance(defaults.get(name), bool) and isinstance(text, str):
            lowered = text.strip().lower()
            if lowered not in ('true', 'false', '1', '0'):
                raise ConfigError(f'argument {name} must be true or false, got {text!r}')
            typed[name] = lowered in ('true', '1')
        else:
            typed[name] = text
    return resolve(GRAPH_ARGUMENTS, typed)


def load_robot_config(robot: str, directory: Path | None = None) -> dict[str, Any]:
    """Read config/robots/<robot>.yaml, with errors that name the file."""
    robots = (directory or config_dir()) / 'robots'
    path = robots / f'{robot}.yaml'
    if not path.is_file():
        known = ', '.join(sorted(p.stem for p in robots.glob('*.yaml'))) or 'none'
        raise ConfigError(f'unknown robot {robot!r}: no {path}; available: {known}')
    try:
        config = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f'malformed robot config {path}: {exc}') from None
    if not isinstance(config, dict) or not isinstance(config.get('cameras', {}), dict):
        raise ConfigError(f'{path}: expected a mapping with a "cameras" mapping')
    return config


def build_graph(
    robot: str = 'so101', mode: str = 'cameras', sim: bool = True, directory: Path | None = None
) -> list[NodeSpec]:
    """The nodes to run, with their parameters checked before anything starts."""
    if mode not in MODES:
        raise ConfigError(f'unknown mode {mode!r}; available: {", ".join(MODES)}')
    config = load_robot_config(robot, directory)
    return [_camera_node(name, settings, sim) for name, settings in config['cameras'].items()]


def _camera_node(name: str, settings: Any, sim: bool) -> NodeSpec:
    if not isinstance(settings, dict):
        raise ConfigError(f'camera {name!r}: expected a mapping of camera parameters')
    parameters = {**settings, 'name': name}
    if sim:
        # Until vla_sim renders its cameras, simulated cameras are moving test patterns.
        parameters.update(source='test_pattern')
    try:
        CameraConfig.from_params(resolve(CAMERA_PARAMETERS, parameters))
    except ConfigError as exc:
        raise ConfigError(f'camera {name!r}: {exc}') from None
    return NodeSpec('vla_perception', 'camera_node', f'camera_{name}', parameters)
