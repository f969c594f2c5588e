"""The node graph of the stack: which nodes run for a robot, mode and sim flag.

One source of truth for both entry points: `launch/robot.launch.py` turns it into launch_ros
Nodes on a ROS install, and `vla bringup` starts the same nodes as processes without launch.
No rclpy or launch imports here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any

from vla_common.errors import ConfigError
from vla_common.params import Param
from vla_common.params import resolve
from vla_common.robot_config import load_robot_config
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


def build_graph(
    robot: str = 'so101', mode: str = 'cameras', sim: bool = True, directory: Path | None = None
) -> list[NodeSpec]:
    """The nodes to run, with their parameters checked before anything starts."""
    if mode not in MODES:
        raise ConfigError(f'unknown mode {mode!r}; available: {", ".join(MODES)}')
    config = load_robot_config(robot, directory)
    cameras = config.get('cameras') or {}
    return [_camera_node(name, settings, sim) for name, settings in cameras.items()]


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
