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
from vla_common.robot_config import config_dir
from vla_common.robot_config import load_robot_config
from vla_control.servo.calibration import ArmCalibration
from vla_control.servo.robot import PARAMETERS as DRIVER_PARAMETERS
from vla_perception.camera import PARAMETERS as CAMERA_PARAMETERS
from vla_perception.camera import CameraConfig
from vla_sim.config import PARAMETERS as SIM_PARAMETERS
from vla_sim.config import ROBOT_TASKS
from vla_sim.config import SIMULATED_ROBOTS
from vla_sim.config import SimConfig

# The arguments of robot.launch.py and `vla bringup`, with defaults.
GRAPH_ARGUMENTS = (
    Param('robot', 'so101', 'Robot: a file config/robots/<robot>.yaml (so101, so100, aloha).'),
    Param(
        'mode',
        'cameras',
        'What to run: cameras; control (+ chunk controller); policy (+ controller and the '
        'VLA policy node); teleop (+ leader -> follower, and in simulation a scripted expert '
        'as the leader); record (teleop + recorder).',
    ),
    Param(
        'sim',
        True,
        'true: the MuJoCo robot and its cameras; false: real hardware (servo drivers of the '
        "robot config's arms: section, camera nodes of its cameras: section).",
    ),
    Param(
        'dataset', '', 'record: dataset directory (created or appended to); empty: data/<robot>.'
    ),
    Param(
        'simulator', 'mujoco', 'With sim:=true: mujoco (vla_sim), or gazebo (ROS install only).'
    ),
    Param(
        'sim_task',
        '',
        "With sim:=true: the simulated task (empty: the robot's first). so101/so100: "
        'pick_cube; aloha: transfer_cube, insertion.',
    ),
    Param(
        'camera_size',
        '',
        'Every camera at WIDTHxHEIGHT, e.g. 320x240 (empty: the sizes in the robot config; '
        'mode policy in simulation: the size the checkpoint was trained on).',
    ),
    Param(
        'checkpoint', '', 'policy: checkpoint directory (empty: an untrained model, for plumbing).'
    ),
)
SIMULATORS = ('mujoco', 'gazebo')
MODES = ('cameras', 'control', 'policy', 'teleop', 'record')
ARM_ROLES = ('follower', 'leader')  # keys of a robot config's `arms:` section
# driver_node parameters an `arms:` role may set besides ports and calibrations.
ARM_OPTIONS = tuple(p.name for p in DRIVER_PARAMETERS if p.name not in ('robot', 'mode'))


@dataclass(frozen=True)
class NodeSpec:
    """One node of the graph, as launch_ros.actions.Node would take it."""

    package: str
    executable: str
    name: str
    parameters: dict[str, Any] = field(default_factory=dict)
    remappings: tuple[tuple[str, str], ...] = ()
    required: bool = True  # when it exits, the whole graph stops
    arguments: tuple[str, ...] = ()  # command-line arguments before --ros-args


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
    robot: str = 'so101',
    mode: str = 'cameras',
    sim: bool = True,
    dataset: str = '',
    simulator: str = 'mujoco',
    sim_task: str = '',
    camera_size: str = '',
    checkpoint: str = '',
    directory: Path | None = None,
) -> list[NodeSpec]:
    """The nodes to run, with their parameters checked before anything starts."""
    if mode not in MODES:
        raise ConfigError(f'unknown mode {mode!r}; available: {", ".join(MODES)}')
    if simulator not in SIMULATORS:
        raise ConfigError(f'unknown simulator {simulator!r}; available: {", ".join(SIMULATORS)}')
    if sim and simulator == 'gazebo':
        return _gazebo_graph(robot, mode)
    config = load_robot_config(robot, directory)
    cameras = config.get('cameras') or {}
    for name, settings in cameras.items():
        if not isinstance(settings, dict):
            raise ConfigError(f'camera {name!r}: expected a mapping of camera parameters')
    if mode == 'policy' and sim and checkpoint and not camera_size:
        camera_size = _trained_camera_size(checkpoint)
    if camera_size:
        size = dict(zip(('width', 'height'), parse_camera_size(camera_size), strict=True))
        cameras = {name: {**settings, **size} for name, settings in cameras.items()}
    teleop = mode in ('teleop', 'record')
    if sim:
        nodes = [_sim_node(robot, config, cameras, expert=teleop, task=sim_task)]
    else:
        # Servo drivers: the follower arm unless only cameras run, the leader arm for teleop.
        roles = [] if mode == 'cameras' else ['follower', 'leader'] if teleop else ['follower']
        root = directory or config_dir()
        nodes = [_driver_node(robot, mode, config, role, root) for role in roles]
        _check_distinct_ports(nodes, config['_path'])
        nodes += [_camera_node(name, settings) for name, settings in cameras.items()]
        if mode == 'policy' and checkpoint:
            _check_trained_camera_sizes(checkpoint, cameras, config['_path'])
    if mode in ('control', 'policy'):
        nodes.append(NodeSpec('vla_control', 'controller_node', 'controller', {'robot': robot}))
    if mode == 'policy':
        policy = {
            'robot': robot,
            'checkpoint': str(Path(checkpoint).resolve()) if checkpoint else '',
        }
        nodes.append(NodeSpec('vla_policy', 'policy_node', 'policy', policy))
    if teleop:
        nodes.append(NodeSpec('vla_teleop', 'teleop_node', 'teleop', {'robot': robot}))
    if mode == 'record':
        recorder: dict[str, Any] = {'robot': robot, 'dataset_dir': dataset or f'data/{robot}'}
        if sim:  # the sim renders every camera at one size: the first camera's
            recorder.update({k: nodes[0].parameters[k] for k in ('width', 'height')})
        nodes.append(NodeSpec('vla_teleop', 'recorder_node', 'recorder', recorder))
    return nodes


def parse_camera_size(text: str) -> tuple[int, int]:
    """'320x240' -> (320, 240)."""
    width, sep, height = text.lower().partition('x')
    if not (sep and width.isdigit() and height.isdigit() and int(width) and int(height)):
        raise ConfigError(f'camera_size must be WIDTHxHEIGHT, e.g. 320x240; got {text!r}')
    return int(width), int(height)


def _trained_camera_size(checkpoint: str) -> str:
    """The one image size of a checkpoint's cameras, as WIDTHxHEIGHT (the sim renders one)."""
    from vla_policy.config import read_config

    shapes = {tuple(shape) for shape in read_config(checkpoint)[0].camera_shapes.values()}
    if len(shapes) != 1:
        raise ConfigError(
            f'{checkpoint}: cameras trained at several sizes {sorted(shapes)}; the simulator '
            'renders one: give camera_size:=WIDTHxHEIGHT'
        )
    height, width = shapes.pop()
    return f'{width}x{height}'


def _sim_node(
    robot: str, config: dict[str, Any], cameras: dict[str, dict], expert: bool, task: str
) -> NodeSpec:
    """The simulator in place of the robot driver and the camera nodes (same topics)."""
    if robot not in SIMULATED_ROBOTS:
        raise ConfigError(
            f'robot {robot!r} has no simulation yet (simulated: {", ".join(SIMULATED_ROBOTS)}); '
            'use sim:=false for the real robot'
        )
    if task and task not in ROBOT_TASKS[robot]:
        raise ConfigError(
            f'unknown sim_task {task!r} for {robot}; available: {", ".join(ROBOT_TASKS[robot])}'
        )
    first = next(iter(cameras.values()), {})
    parameters = {
        'robot': robot,
        'cameras': list(cameras) or ['front'],
        'camera_fps': float(config.get('fps', 30)),
        'width': first.get('width', 640),
        'height': first.get('height', 480),
        'expert': expert,
        'task': task,
    }
    SimConfig.from_params(resolve(SIM_PARAMETERS, parameters))
    return NodeSpec('vla_sim', 'sim_node', 'sim', parameters)


def _driver_node(
    robot: str, mode: str, config: dict[str, Any], role: str, directory: Path
) -> NodeSpec:
    """The servo driver of the follower or leader arm(s), from the robot config's `arms:`.

    Relative calibration paths are under the config directory. Calibration files that exist
    are checked now (robot, arm, joints); a missing one is reported by the driver at start.
    """
    where = config['_path']
    arms = config.get('arms')
    example = (
        f'arms:\n  {role}:\n    ports: [/dev/{robot}_{role}]\n'
        f'    calibrations: [calibration/{robot}_{role}.yaml]'
    )
    if arms is None or (isinstance(arms, dict) and arms.get(role) is None):
        raise ConfigError(
            f'{where} has no arms.{role} section: mode:={mode} sim:=false runs a servo driver '
            f'for the {role} arm. Add its serial port(s) and calibration file(s), one per servo '
            f'bus (relative paths are under {directory}; docs/hardware.md), e.g.\n{example}'
        )
    if not isinstance(arms, dict):
        raise ConfigError(f'{where}: "arms" must be a mapping with {" and/or ".join(ARM_ROLES)}')
    unknown = sorted(set(arms) - set(ARM_ROLES))
    if unknown:
        raise ConfigError(f'{where}: unknown arms {unknown}; known: {", ".join(ARM_ROLES)}')
    section = arms[role]
    context = f'{where}: arms.{role}'
    if not isinstance(section, dict):
        raise ConfigError(f'{context}: expected a mapping with ports and calibrations')
    extra = sorted(set(section) - set(ARM_OPTIONS))
    if extra:
        raise ConfigError(f'{context}: unknown keys {extra}; known: {", ".join(ARM_OPTIONS)}')
    missing = [key for key in ('ports', 'calibrations') if key not in section]
    if missing:
        raise ConfigError(f'{context}: missing {" and ".join(missing)}\n{example}')
    try:
        values = resolve(DRIVER_PARAMETERS, {**section, 'robot': robot, 'mode': role})
    except ConfigError as exc:
        raise ConfigError(f'{context}: {exc}') from None
    ports, files = values['ports'], values['calibrations']
    for key, items in (('ports', ports), ('calibrations', files)):
        if not items or not all(isinstance(item, str) and item.strip() for item in items):
            raise ConfigError(f'{context}: {key} must be a non-empty list of non-empty strings')
    if len(ports) != len(files):
        raise ConfigError(
            f'{context}: one calibration file per port, got {len(ports)} ports and '
            f'{len(files)} calibrations'
        )
    paths = [Path(name).expanduser() for name in files]
    files = [str(p if p.is_absolute() else directory / p) for p in paths]
    if all(Path(path).is_file() for path in files):
        _check_calibrations(config, role, files, context)
    parameters = {'robot': robot, 'mode': role, 'ports': ports, 'calibrations': files}
    parameters.update({key: values[key] for key in section if key not in parameters})
    return NodeSpec('vla_control', 'driver_node', role, parameters)


def _check_calibrations(config: dict[str, Any], role: str, files: list[str], where: str):
    """The calibrations of one role: for this robot and arm, every needed joint once."""
    names: list[str] = []
    for path in files:
        try:
            calibration = ArmCalibration.load(path, config)
        except ConfigError as exc:
            raise ConfigError(f'{where}: {exc}') from None
        if calibration.arm != role:
            raise ConfigError(f'{where}: {path} is the calibration of a {calibration.arm} arm')
        names += calibration.names
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise ConfigError(f'{where}: joints {twice} are in more than one calibration file')
    if role == 'follower':
        needed = list(config.get('joints') or {})
    else:  # the joints the teleop node reads from the leader
        from vla_teleop.mapping import TeleopMapping

        needed = [m.leader for m in TeleopMapping.from_robot_config(config).maps.values()]
    absent = [name for name in needed if name not in names]
    if absent:
        what = 'every joint of the robot' if role == 'follower' else 'the joints teleop reads'
        raise ConfigError(
            f'{where}: no calibration covers {absent} (the {role} driver must publish {what}): '
            'add the port and calibration file of the arm that has them'
        )


def _check_distinct_ports(drivers: list[NodeSpec], where: str) -> None:
    ports = [port for spec in drivers for port in spec.parameters['ports']]
    twice = sorted({port for port in ports if ports.count(port) > 1})
    if twice:
        raise ConfigError(f'{where}: arms: {twice} named more than once (one bus, one driver)')


def _check_trained_camera_sizes(checkpoint: str, cameras: dict[str, dict], where: str) -> None:
    """Real cameras must deliver the image sizes the checkpoint was trained on."""
    from vla_policy.config import read_config

    policy = read_config(checkpoint)[0]
    default = {p.name: p.default for p in CAMERA_PARAMETERS}
    for name in policy.cameras:
        if name not in cameras:
            raise ConfigError(
                f'{checkpoint} was trained with camera {name!r}; {where} has '
                f'{", ".join(cameras) or "no cameras"}'
            )
        height, width = policy.camera_shapes[name]
        settings = {**default, **cameras[name]}
        if (settings['width'], settings['height']) != (width, height):
            raise ConfigError(
                f'camera {name!r} delivers {settings["width"]}x{settings["height"]} but '
                f'{checkpoint} was trained on {width}x{height}: give camera_size:={width}x'
                f'{height} (every camera) or set width/height of the camera in {where}'
            )


def _camera_node(name: str, settings: dict[str, Any]) -> NodeSpec:
    parameters = {**settings, 'name': name}
    try:
        CameraConfig.from_params(resolve(CAMERA_PARAMETERS, parameters))
    except ConfigError as exc:
        raise ConfigError(f'camera {name!r}: {exc}') from None
    return NodeSpec('vla_perception', 'camera_node', f'camera_{name}', parameters)


def _gazebo_graph(robot: str, mode: str) -> list[NodeSpec]:
    """Gazebo + ros2_control in place of vla_sim (robot.launch.py also starts gz sim itself).

    joint_states come from joint_state_broadcaster; the chunk controller drives
    joint_trajectory_controller with JointTrajectory messages; ros_gz_bridge carries /clock
    and the cameras' images and camera_info (sensors in vla_sim.gazebo's world and URDF).
    """
    from vla_sim.gazebo import BROADCASTER
    from vla_sim.gazebo import TRAJECTORY_CONTROLLER
    from vla_sim.gazebo import bridge_arguments
    from vla_sim.gazebo import camera_sizes
    from vla_sim.gazebo import gazebo_urdf

    if mode not in ('cameras', 'control'):
        raise ConfigError(f'mode {mode!r} needs the MuJoCo sim (its expert): simulator:=mujoco')
    sim_time = {'use_sim_time': True}
    nodes = [
        NodeSpec(
            'robot_state_publisher',
            'robot_state_publisher',
            'robot_state_publisher',
            {'robot_description': gazebo_urdf(robot), **sim_time},
        ),
        NodeSpec(
            'ros_gz_sim',
            'create',
            'spawn_robot',
            required=False,
            arguments=('-topic', 'robot_description', '-name', robot),
        ),
        NodeSpec(
            'ros_gz_bridge',
            'parameter_bridge',
            'gz_bridge',
            arguments=bridge_arguments(camera_sizes(robot)),
        ),
        NodeSpec(
            'controller_manager',
            'spawner',
            'spawn_broadcaster',
            required=False,
            arguments=(BROADCASTER,),
        ),
        NodeSpec(
            'controller_manager',
            'spawner',
            'spawn_trajectory_controller',
            required=False,
            arguments=(TRAJECTORY_CONTROLLER,),
        ),
    ]
    if mode == 'control':
        parameters = {
            'robot': robot,
            'publish_trajectory': True,
            **sim_time,
            'trajectory_topic': f'{TRAJECTORY_CONTROLLER}/joint_trajectory',
        }
        nodes.append(NodeSpec('vla_control', 'controller_node', 'controller', parameters))
    return nodes
