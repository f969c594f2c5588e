import importlib.util
from pathlib import Path

import pytest

from vla_bringup.graph import GRAPH_ARGUMENTS
from vla_bringup.graph import build_graph
from vla_bringup.graph import parse_arguments
from vla_common.errors import ConfigError
from vla_common.robot_config import config_dir
from vla_common.robot_config import load_robot_config


def robot_dir(tmp_path, text):
    (tmp_path / 'robots').mkdir()
    (tmp_path / 'robots' / 'bot.yaml').write_text(text)
    return tmp_path


def test_so101_sim_graph_is_the_simulator_with_the_robots_cameras():
    (spec,) = build_graph(robot='so101', mode='cameras', sim=True)
    assert (spec.package, spec.executable, spec.name, spec.required) == (
        'vla_sim',
        'sim_node',
        'sim',
        True,
    )
    assert spec.parameters['cameras'] == ['front', 'wrist']
    assert spec.parameters['camera_fps'] == 30.0


def test_real_so101_graph_has_one_camera_node_per_camera_and_control_adds_the_controller():
    specs = build_graph(robot='so101', mode='control', sim=False)
    assert [(s.package, s.executable, s.name) for s in specs] == [
        ('vla_perception', 'camera_node', 'camera_front'),
        ('vla_perception', 'camera_node', 'camera_wrist'),
        ('vla_control', 'controller_node', 'controller'),
    ]
    assert specs[0].parameters['name'] == 'front'
    assert specs[2].parameters == {'robot': 'so101'}


def test_real_hardware_graph_keeps_the_configured_devices():
    specs = build_graph(robot='aloha', mode='cameras', sim=False)
    assert [s.parameters['device'] for s in specs] == [
        '/dev/CAM_HIGH',
        '/dev/CAM_LEFT_WRIST',
        '/dev/CAM_RIGHT_WRIST',
    ]
    assert all(s.parameters['fps'] == 50.0 for s in specs)


def test_every_shipped_robot_config_builds():
    robots = sorted(p.stem for p in (config_dir() / 'robots').glob('*.yaml'))
    assert robots == ['aloha', 'so100', 'so101']
    for robot in robots:
        for mode in ('cameras', 'control', 'teleop'):
            assert build_graph(robot=robot, mode=mode, sim=False)
            if robot != 'aloha' or mode != 'teleop':
                assert build_graph(robot=robot, mode=mode, sim=True)
    (sim,) = build_graph(robot='aloha', sim=True)
    assert sim.parameters['cameras'] == ['cam_high', 'cam_left_wrist', 'cam_right_wrist']
    with pytest.raises(ConfigError, match=r'no scripted expert for aloha \(transfer_cube\)'):
        build_graph(robot='aloha', mode='teleop', sim=True)


def test_arguments_are_typed_and_checked():
    assert parse_arguments({}) == {p.name: p.default for p in GRAPH_ARGUMENTS}
    assert parse_arguments({'sim': 'False', 'robot': 'aloha'})['sim'] is False
    with pytest.raises(ConfigError, match='sim must be true or false'):
        parse_arguments({'sim': 'maybe'})
    with pytest.raises(ConfigError, match=r'unknown parameter\(s\) robto'):
        parse_arguments({'robto': 'so101'})


@pytest.mark.parametrize(
    ('kwargs', 'message'),
    [
        ({'robot': 'ur5'}, "unknown robot 'ur5'.*available: aloha, so100, so101"),
        ({'mode': 'dance'}, "unknown mode 'dance'"),
    ],
)
def test_unknown_robot_or_mode(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        build_graph(**kwargs)


def test_bad_camera_settings_are_caught_before_anything_starts(tmp_path):
    directory = robot_dir(tmp_path, 'cameras:\n  top: {source: v4l2, fps: 0}\n')
    with pytest.raises(ConfigError, match="camera 'top': fps must be > 0"):
        build_graph(robot='bot', sim=False, directory=directory)


def test_malformed_robot_yaml_names_the_file(tmp_path):
    directory = robot_dir(tmp_path, 'cameras: [unclosed\n')
    with pytest.raises(ConfigError, match=r'malformed robot config .*bot\.yaml'):
        build_graph(robot='bot', directory=directory)


def test_config_dir_can_be_overridden(tmp_path, monkeypatch):
    monkeypatch.setenv('VLA_CONFIG_DIR', str(robot_dir(tmp_path, 'cameras: {}\n')))
    assert build_graph(robot='bot', sim=False) == []


def test_launch_file_builds_the_same_nodes_as_the_runner():
    pytest.importorskip('launch_ros', reason='launch_ros is only on a full ROS install')
    from launch import LaunchContext

    path = config_dir().parent / 'launch' / 'robot.launch.py'
    spec = importlib.util.spec_from_file_location('robot_launch', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for arguments in (
        {'robot': 'so101', 'sim': 'true'},
        {'robot': 'aloha', 'sim': 'false', 'mode': 'control'},
    ):
        context = LaunchContext()
        for entity in module.generate_launch_description().entities:
            if type(entity).__name__ == 'DeclareLaunchArgument':
                context.launch_configurations[entity.name] = arguments.get(
                    entity.name, entity.default_value[0].perform(context)
                )
        nodes = module.launch_nodes(context)
        for node in nodes:
            node._perform_substitutions(context)  # node_name is only known after this
        expected = build_graph(**parse_arguments(arguments))
        assert [(n.node_package, n.node_executable, n.node_name) for n in nodes] == [
            (s.package, s.executable, f'/{s.name}') for s in expected
        ]


def test_status_summary_line():
    from vla_bringup.status_node import summarize

    statuses = {
        'b: camera wrist': (2, 'stale: no new frame for 3.0 s', {'fps_measured': '0.0'}, 99.0),
        'a: camera front': (0, 'streaming', {'fps_measured': '30.0'}, 100.0),
        'c: camera top': (0, 'streaming', {}, 90.0),
    }
    assert summarize(statuses, now=100.5) == (
        'a: camera front OK streaming (30.0 fps); '
        'b: camera wrist ERROR stale: no new frame for 3.0 s (0.0 fps); '
        'c: camera top STALE (no report for 10 s)'
    )
    assert summarize({}, now=0.0) == 'no diagnostics yet'


def test_teleop_in_simulation_has_the_expert_as_leader():
    sim, teleop = build_graph(robot='so101', mode='teleop', sim=True)
    assert sim.parameters['expert'] is True
    assert (teleop.package, teleop.executable, teleop.parameters) == (
        'vla_teleop',
        'teleop_node',
        {'robot': 'so101'},
    )


def test_gazebo_graph_spawns_ros2_control_and_drives_the_trajectory_controller():
    import xml.etree.ElementTree as ET

    import yaml

    specs = build_graph(robot='so101', mode='control', sim=True, simulator='gazebo')
    assert [(s.package, s.executable) for s in specs] == [
        ('robot_state_publisher', 'robot_state_publisher'),
        ('ros_gz_sim', 'create'),
        ('controller_manager', 'spawner'),
        ('controller_manager', 'spawner'),
        ('vla_control', 'controller_node'),
    ]
    assert specs[2].arguments == ('joint_state_broadcaster',)
    controller = specs[4].parameters
    assert controller['publish_trajectory'] is True
    assert controller['trajectory_topic'] == 'joint_trajectory_controller/joint_trajectory'
    urdf = ET.fromstring(specs[0].parameters['robot_description'])
    control = urdf.find('ros2_control')
    joints = [j.get('name') for j in control.findall('joint')]
    robot_joints = list(load_robot_config('so101')['joints'])
    assert joints == robot_joints
    assert control.find('hardware/plugin').text == 'gz_ros2_control/GazeboSimSystem'
    meshes = [m.get('filename') for m in urdf.iter('mesh')]
    assert meshes
    assert all(m.startswith('file:///') for m in meshes)
    parameters_file = urdf.find('gazebo/plugin/parameters').text
    controllers = yaml.safe_load(Path(parameters_file).read_text())
    assert controllers['joint_trajectory_controller']['ros__parameters']['joints'] == robot_joints
    with pytest.raises(ConfigError, match='needs the MuJoCo sim'):
        build_graph(robot='so101', mode='teleop', simulator='gazebo')
    with pytest.raises(ConfigError, match="unknown simulator 'webots'"):
        build_graph(simulator='webots')


def test_record_graph_sizes_the_recorder_like_the_cameras():
    *_, recorder = build_graph(robot='so101', mode='record', sim=True, dataset='data/x')
    assert (recorder.executable, recorder.parameters['dataset_dir']) == ('recorder_node', 'data/x')
    assert (recorder.parameters['width'], recorder.parameters['height']) == (640, 480)
    *_, real = build_graph(robot='aloha', mode='record', sim=False)
    assert 'width' not in real.parameters, 'real cameras: each size from the robot config'
