import importlib.util

import pytest

from vla_bringup.graph import GRAPH_ARGUMENTS
from vla_bringup.graph import build_graph
from vla_bringup.graph import parse_arguments
from vla_common.errors import ConfigError
from vla_common.robot_config import config_dir


def robot_dir(tmp_path, text):
    (tmp_path / 'robots').mkdir()
    (tmp_path / 'robots' / 'bot.yaml').write_text(text)
    return tmp_path


def test_so101_sim_graph_is_one_test_pattern_camera_node_per_camera():
    specs = build_graph(robot='so101', mode='cameras', sim=True)
    assert [s.name for s in specs] == ['camera_front', 'camera_wrist']
    for spec in specs:
        assert (spec.package, spec.executable, spec.required) == (
            'vla_perception',
            'camera_node',
            True,
        )
        assert spec.parameters['source'] == 'test_pattern'
    assert specs[0].parameters['name'] == 'front'


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
        for sim in (True, False):
            assert build_graph(robot=robot, sim=sim)


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
        build_graph(robot='bot', directory=directory)


def test_malformed_robot_yaml_names_the_file(tmp_path):
    directory = robot_dir(tmp_path, 'cameras: [unclosed\n')
    with pytest.raises(ConfigError, match=r'malformed robot config .*bot\.yaml'):
        build_graph(robot='bot', directory=directory)


def test_config_dir_can_be_overridden(tmp_path, monkeypatch):
    monkeypatch.setenv('VLA_CONFIG_DIR', str(robot_dir(tmp_path, 'cameras: {}\n')))
    assert build_graph(robot='bot') == []


def test_launch_file_builds_the_same_nodes_as_the_runner():
    pytest.importorskip('launch_ros', reason='launch_ros is only on a full ROS install')
    from launch import LaunchContext

    path = config_dir().parent / 'launch' / 'robot.launch.py'
    spec = importlib.util.spec_from_file_location('robot_launch', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for arguments in ({'robot': 'so101', 'sim': 'true'}, {'robot': 'aloha', 'sim': 'false'}):
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
