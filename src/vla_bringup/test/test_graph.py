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
        ('vla_control', 'driver_node', 'follower'),
        ('vla_perception', 'camera_node', 'camera_front'),
        ('vla_perception', 'camera_node', 'camera_wrist'),
        ('vla_control', 'controller_node', 'controller'),
    ]
    assert specs[1].parameters['name'] == 'front'
    assert specs[3].parameters == {'robot': 'so101'}


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
        for mode in ('cameras', 'control', 'policy', 'teleop', 'record'):
            assert build_graph(robot=robot, mode=mode, sim=False)
        for mode in ('cameras', 'control', 'teleop'):
            assert build_graph(robot=robot, mode=mode, sim=True)
    (sim,) = build_graph(robot='aloha', sim=True)
    assert sim.parameters['cameras'] == ['cam_high', 'cam_left_wrist', 'cam_right_wrist']
    assert sim.parameters['task'] == ''


def test_sim_task_picks_the_scene_of_the_robot():
    sim, *_ = build_graph(robot='aloha', mode='record', sim_task='insertion')
    assert (sim.parameters['task'], sim.parameters['expert']) == ('insertion', True)
    with pytest.raises(
        ConfigError, match="unknown sim_task 'insertion' for so101; available: pick_cube"
    ):
        build_graph(robot='so101', sim_task='insertion')


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
        ('ros_gz_bridge', 'parameter_bridge'),
        ('controller_manager', 'spawner'),
        ('controller_manager', 'spawner'),
        ('vla_control', 'controller_node'),
    ]
    assert specs[2].arguments == (
        '/clock@rosgraph_msgs/msg/Clock[gz.msgs.Clock',
        'camera/front/image_raw@sensor_msgs/msg/Image[gz.msgs.Image',
        'camera/front/camera_info@sensor_msgs/msg/CameraInfo[gz.msgs.CameraInfo',
        'camera/wrist/image_raw@sensor_msgs/msg/Image[gz.msgs.Image',
        'camera/wrist/camera_info@sensor_msgs/msg/CameraInfo[gz.msgs.CameraInfo',
    )
    assert specs[3].arguments == ('joint_state_broadcaster',)
    controller = specs[5].parameters
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


# --- real hardware: servo drivers from the robot config's `arms:` section --------------------

EXAMPLES = config_dir() / 'calibration'


def real_rig(tmp_path, robot='so101', arms=None, calibrations=()):
    """A config directory with the shipped `robot` config, its `arms:` replaced (None: removed).

    `calibrations`: (file name under calibration/, example it copies, changes to its content).
    """
    import yaml

    config = yaml.safe_load((config_dir() / 'robots' / f'{robot}.yaml').read_text())
    config.pop('arms')
    if arms is not None:
        config['arms'] = arms
    (tmp_path / 'robots').mkdir(exist_ok=True)
    (tmp_path / 'robots' / f'{robot}.yaml').write_text(yaml.safe_dump(config, sort_keys=False))
    for name, example, changes in calibrations:
        data = yaml.safe_load((EXAMPLES / example).read_text())
        (tmp_path / 'calibration').mkdir(exist_ok=True)
        (tmp_path / 'calibration' / name).write_text(
            yaml.safe_dump({**data, **changes}, sort_keys=False)
        )
    return tmp_path


def aloha_right(example_data):
    """The left arm's example calibration as the right arm's."""
    return {n.replace('left_', 'right_'): v for n, v in example_data['joints'].items()}


def test_real_hardware_modes_run_the_follower_and_teleop_the_leader_driver():
    expected = {
        'cameras': ['camera_front', 'camera_wrist'],
        'control': ['follower', 'camera_front', 'camera_wrist', 'controller'],
        'policy': ['follower', 'camera_front', 'camera_wrist', 'controller', 'policy'],
        'teleop': ['follower', 'leader', 'camera_front', 'camera_wrist', 'teleop'],
        'record': ['follower', 'leader', 'camera_front', 'camera_wrist', 'teleop', 'recorder'],
    }
    for mode, names in expected.items():
        assert [s.name for s in build_graph(robot='so101', mode=mode, sim=False)] == names, mode
    follower, leader, *_ = build_graph(robot='so101', mode='record', sim=False)
    calibration = config_dir() / 'calibration'
    assert (follower.package, follower.executable, follower.required) == (
        'vla_control',
        'driver_node',
        True,
    )
    assert follower.parameters == {
        'robot': 'so101',
        'mode': 'follower',
        'ports': ['/dev/so101_follower'],
        'calibrations': [str(calibration / 'so101_follower.yaml')],
    }
    assert leader.parameters == {
        'robot': 'so101',
        'mode': 'leader',
        'ports': ['/dev/so101_leader'],
        'calibrations': [str(calibration / 'so101_leader.yaml')],
    }
    # Every parameter is one the driver node declares, with its type.
    from vla_common.params import resolve
    from vla_control.servo.robot import PARAMETERS

    assert resolve(PARAMETERS, follower.parameters)['rate_hz'] == 100.0


def test_aloha_drivers_have_one_port_and_calibration_per_arm_left_first():
    follower, leader, *_ = build_graph(robot='aloha', mode='teleop', sim=False)
    calibration = config_dir() / 'calibration'
    assert follower.parameters['ports'] == ['/dev/ttyDXL_puppet_left', '/dev/ttyDXL_puppet_right']
    assert follower.parameters['calibrations'] == [
        str(calibration / 'aloha_left_follower.yaml'),
        str(calibration / 'aloha_right_follower.yaml'),
    ]
    assert leader.parameters['ports'] == ['/dev/ttyDXL_master_left', '/dev/ttyDXL_master_right']
    assert leader.parameters['calibrations'] == [
        str(calibration / 'aloha_left_leader.yaml'),
        str(calibration / 'aloha_right_leader.yaml'),
    ]


def test_a_mode_that_needs_an_arm_without_its_section_says_which_file_and_what_to_add(tmp_path):
    directory = real_rig(tmp_path)
    assert [s.name for s in build_graph(robot='so101', sim=False, directory=directory)] == [
        'camera_front',
        'camera_wrist',
    ], 'cameras alone need no arms'
    path = directory / 'robots' / 'so101.yaml'
    with pytest.raises(ConfigError) as error:
        build_graph(robot='so101', mode='control', sim=False, directory=directory)
    message = str(error.value)
    assert message.startswith(f'{path} has no arms.follower section: mode:=control sim:=false')
    assert message.endswith(
        'arms:\n  follower:\n    ports: [/dev/so101_follower]\n'
        '    calibrations: [calibration/so101_follower.yaml]'
    )
    assert f'relative paths are under {directory}' in message
    follower_only = {'follower': {'ports': ['/dev/a'], 'calibrations': ['a.yaml']}}
    directory = real_rig(tmp_path, arms=follower_only)
    assert build_graph(robot='so101', mode='policy', sim=False, directory=directory)
    with pytest.raises(ConfigError, match=r'has no arms\.leader section: mode:=record'):
        build_graph(robot='so101', mode='record', sim=False, directory=directory)


@pytest.mark.parametrize(
    ('arms', 'message'),
    [
        ([1, 2], '"arms" must be a mapping with follower and/or leader'),
        ({'follower': {}, 'puppet': {}}, r"unknown arms \['puppet'\]"),
        ({'follower': '/dev/a'}, 'arms.follower: expected a mapping with ports and calibrations'),
        ({'follower': {'ports': ['/dev/a']}}, 'arms.follower: missing calibrations\narms:'),
        (
            {'follower': {'ports': ['/dev/a'], 'calibrations': ['a.yaml'], 'baud': 1}},
            r"arms.follower: unknown keys \['baud'\]; known: ports, calibrations, rate_hz",
        ),
        (
            {'follower': {'ports': '/dev/a', 'calibrations': ['a.yaml']}},
            r"arms.follower: parameter 'ports' must be list",
        ),
        (
            {'follower': {'ports': ['/dev/a'], 'calibrations': ['a.yaml'], 'rate_hz': 'fast'}},
            r"arms.follower: parameter 'rate_hz' must be float",
        ),
        (
            {'follower': {'ports': [], 'calibrations': []}},
            'ports must be a non-empty list of non-empty strings',
        ),
        (
            {'follower': {'ports': ['/dev/a'], 'calibrations': ['']}},
            'calibrations must be a non-empty list of non-empty strings',
        ),
        (
            {'follower': {'ports': ['/dev/a', '/dev/b'], 'calibrations': ['a.yaml']}},
            'one calibration file per port, got 2 ports and 1 calibrations',
        ),
        (
            {
                'follower': {'ports': ['/dev/a'], 'calibrations': ['a.yaml']},
                'leader': {'ports': ['/dev/a'], 'calibrations': ['b.yaml']},
            },
            r"arms: \['/dev/a'\] named more than once",
        ),
    ],
)
def test_bad_arms_sections_are_caught_before_anything_starts(tmp_path, arms, message):
    directory = real_rig(tmp_path, arms=arms)
    with pytest.raises(ConfigError, match=message) as error:
        build_graph(robot='so101', mode='teleop', sim=False, directory=directory)
    assert str(directory / 'robots' / 'so101.yaml') in str(error.value)


def test_arms_options_and_calibration_paths(tmp_path):
    arms = {
        'follower': {
            'ports': ['/dev/a'],
            'calibrations': ['/abs/follower.yaml'],
            'rate_hz': 50,
            'torque_off_on_exit': False,
        },
        'leader': {'ports': ['/dev/b'], 'calibrations': ['~/leader.yaml']},
    }
    directory = real_rig(tmp_path, arms=arms)
    follower, leader, *_ = build_graph(
        robot='so101', mode='teleop', sim=False, directory=directory
    )
    assert follower.parameters == {
        'robot': 'so101',
        'mode': 'follower',
        'ports': ['/dev/a'],
        'calibrations': ['/abs/follower.yaml'],
        'rate_hz': 50.0,
        'torque_off_on_exit': False,
    }
    assert leader.parameters['calibrations'] == [str(Path('~/leader.yaml').expanduser())]


def test_existing_calibration_files_are_checked_against_the_robot_and_the_arm(tmp_path):
    example = 'so101_follower.example.yaml'
    arms = {
        'follower': {'ports': ['/dev/f'], 'calibrations': ['calibration/f.yaml']},
        'leader': {'ports': ['/dev/l'], 'calibrations': ['calibration/l.yaml']},
    }
    good = [('f.yaml', example, {}), ('l.yaml', example, {'arm': 'leader'})]
    directory = real_rig(tmp_path, arms=arms, calibrations=good)
    follower, leader, *_ = build_graph(
        robot='so101', mode='teleop', sim=False, directory=directory
    )
    assert follower.parameters['calibrations'] == [str(directory / 'calibration' / 'f.yaml')]
    assert leader.parameters['calibrations'] == [str(directory / 'calibration' / 'l.yaml')]

    swapped = [('f.yaml', example, {}), ('l.yaml', example, {})]
    directory = real_rig(tmp_path, arms=arms, calibrations=swapped)
    with pytest.raises(
        ConfigError, match=r'arms.leader: .*l\.yaml is the calibration of a follower'
    ):
        build_graph(robot='so101', mode='teleop', sim=False, directory=directory)
    other_robot = [('f.yaml', example, {'robot': 'so100'})]
    directory = real_rig(tmp_path, arms=arms, calibrations=other_robot)
    with pytest.raises(ConfigError, match=r"arms.follower: .*f\.yaml: robot is 'so100'"):
        build_graph(robot='so101', mode='control', sim=False, directory=directory)


def test_aloha_calibrations_must_cover_both_arms_once(tmp_path):
    import yaml

    left = yaml.safe_load((EXAMPLES / 'aloha_left_follower.example.yaml').read_text())
    example = 'aloha_left_follower.example.yaml'
    files = [('left.yaml', example, {}), ('right.yaml', example, {'joints': aloha_right(left)})]
    one_arm = {'follower': {'ports': ['/dev/l'], 'calibrations': ['calibration/left.yaml']}}
    directory = real_rig(tmp_path, 'aloha', arms=one_arm, calibrations=files)
    with pytest.raises(ConfigError, match=r"no calibration covers \['right_waist'"):
        build_graph(robot='aloha', mode='control', sim=False, directory=directory)
    twice = {
        'follower': {
            'ports': ['/dev/l', '/dev/r'],
            'calibrations': ['calibration/left.yaml', 'calibration/left.yaml'],
        }
    }
    directory = real_rig(tmp_path, 'aloha', arms=twice, calibrations=files)
    with pytest.raises(ConfigError, match=r"joints \['left_elbow'.* more than one calibration"):
        build_graph(robot='aloha', mode='control', sim=False, directory=directory)
    both = {
        'follower': {
            'ports': ['/dev/l', '/dev/r'],
            'calibrations': ['calibration/left.yaml', 'calibration/right.yaml'],
        }
    }
    directory = real_rig(tmp_path, 'aloha', arms=both, calibrations=files)
    (follower, *_) = build_graph(robot='aloha', mode='control', sim=False, directory=directory)
    assert follower.parameters['ports'] == ['/dev/l', '/dev/r']


def test_real_policy_cameras_must_have_the_checkpoints_image_sizes(tmp_path):
    import json

    from vla_policy.config import FORMAT_VERSION
    from vla_policy.config import preset_config

    checkpoint = tmp_path / 'checkpoint'
    checkpoint.mkdir()
    shapes = {'front': [240, 320], 'wrist': [240, 320]}
    config = preset_config('tiny', load_robot_config('so101'), camera_shapes=shapes)
    (checkpoint / 'config.json').write_text(
        json.dumps({'format_version': FORMAT_VERSION, **config.to_dict()})
    )
    arguments = {'robot': 'so101', 'mode': 'policy', 'sim': False, 'checkpoint': str(checkpoint)}
    with pytest.raises(ConfigError) as error:
        build_graph(**arguments)
    assert str(error.value) == (
        f"camera 'front' delivers 640x480 but {checkpoint} was trained on 320x240: give "
        f'camera_size:=320x240 (every camera) or set width/height of the camera in '
        f'{config_dir() / "robots" / "so101.yaml"}'
    )
    specs = build_graph(**arguments, camera_size='320x240')
    assert [s.parameters['width'] for s in specs if s.executable == 'camera_node'] == [320, 320]
    assert specs[-1].parameters['checkpoint'] == str(checkpoint)
    shapes['top'] = [240, 320]
    config = preset_config('tiny', load_robot_config('so101'), camera_shapes=shapes)
    config.cameras.append('top')
    (checkpoint / 'config.json').write_text(
        json.dumps({'format_version': FORMAT_VERSION, **config.to_dict()})
    )
    with pytest.raises(ConfigError, match=r"trained with camera 'top'; .* has front, wrist"):
        build_graph(**arguments, camera_size='320x240')
