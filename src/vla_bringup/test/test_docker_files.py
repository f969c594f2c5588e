"""docker/: what can be checked without Docker.

The compose file parses and describes both hosts (host network, ipc, ROS_DOMAIN_ID from the
environment, device access on the robot side, an NVIDIA GPU on the policy side); every file the
Dockerfiles COPY and every repository path compose mounts exists; every command names a console
script of some src/*/setup.py or a launch file that exists, with arguments and parameters that
the stack declares; container paths under /ws/ that point into the copied sources exist.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
DOCKER = ROOT / 'docker'
COMPOSE = DOCKER / 'compose.yaml'
DOCKERFILES = sorted(DOCKER.glob('Dockerfile*'))
CONTEXT = ROOT  # every Dockerfile here is built with the repository root as its context
WORKSPACE = '/ws'  # WORKDIR of the images: /ws/<dir> is the repository's <dir>, copied


# --- parsing helpers --------------------------------------------------------------------------


def interpolate(text: str) -> str:
    """Compose variable interpolation with every variable unset: defaults are used."""

    def value(match: re.Match) -> str:
        _, operator, default = match.group(1), match.group(2), match.group(3)
        return default if operator in (':-', '-') else ''

    text = re.sub(r'\$\{(\w+)(?:(:?[-?])([^}]*))?\}', lambda m: value(m), text)
    return text.replace('$$', '$')


def dockerfile_instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    instructions, current = [], ''
    for line in path.read_text().splitlines():
        stripped = line.strip()
        if not current and (not stripped or stripped.startswith('#')):
            continue
        if current and stripped.startswith('#'):
            continue  # a comment inside a continued instruction
        if stripped.endswith('\\'):
            current += stripped[:-1] + ' '
            continue
        current += stripped
        keyword, _, arguments = current.partition(' ')
        instructions.append((keyword.upper(), arguments.strip()))
        current = ''
    return instructions


def exec_form(arguments: str) -> list[str]:
    """CMD/ENTRYPOINT/RUN arguments as a list (JSON exec form, or shell form split)."""
    if arguments.startswith('['):
        return json.loads(arguments)
    return shlex.split(arguments)


def console_scripts() -> dict[str, set[str]]:
    """{package: console script names} from every src/*/setup.py."""
    scripts = {}
    for setup in sorted(ROOT.glob('src/*/setup.py')):
        names = re.findall(r"['\"]\s*([\w.-]+)\s*=\s*[\w.]+:\w+\s*['\"]", setup.read_text())
        scripts[setup.parent.name] = set(names)
    return scripts


def packages() -> set[str]:
    return {p.parent.name for p in ROOT.glob('src/*/package.xml')}


def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def compose_commands() -> list[tuple[str, list[str]]]:
    commands = []
    for name, service in compose()['services'].items():
        if 'command' in service:
            command = service['command']
            argv = [interpolate(c) for c in command] if isinstance(command, list) else None
            commands.append((f'service {name}', argv or shlex.split(interpolate(command))))
    return commands


def dockerfile_commands() -> list[tuple[str, list[str]]]:
    return [
        (f'{path.name} {keyword}', exec_form(arguments))
        for path in DOCKERFILES
        for keyword, arguments in dockerfile_instructions(path)
        if keyword in ('CMD', 'ENTRYPOINT')
    ]


def named_arguments(argv: list[str]) -> dict[str, str]:
    return dict(a.split(':=', 1) for a in argv if ':=' in a and not a.startswith('-'))


def ros_parameters(argv: list[str]) -> dict[str, str]:
    """`-p name:=value` pairs after --ros-args."""
    if '--ros-args' not in argv:
        return {}
    rest = argv[argv.index('--ros-args') + 1 :]
    pairs = [rest[i + 1] for i, a in enumerate(rest[:-1]) if a in ('-p', '--param')]
    return dict(p.split(':=', 1) for p in pairs)


def parameter_table(executable: str):
    """The PARAMETERS table of each node that a command gives `-p` parameters to."""
    if executable == 'policy_node':
        from vla_policy.policy import PARAMETERS

        return PARAMETERS
    pytest.fail(f'add the parameter table of {executable} to parameter_table() in this test')


# --- the tests ----------------------------------------------------------------------------------


def test_there_is_a_compose_file_and_a_dockerfile():
    assert COMPOSE.is_file()
    assert DOCKER / 'Dockerfile.humble' in DOCKERFILES


def test_compose_describes_a_robot_side_and_a_gpu_side_on_the_host_network():
    services = compose()['services']
    assert {'robot', 'policy'} <= set(services)
    for name, service in services.items():
        assert service.get('network_mode') == 'host', f'{name}: DDS needs the host network'
        assert service.get('ipc') == 'host', f'{name}: Fast DDS shared memory needs ipc: host'
        environment = service.get('environment', {})
        assert str(environment.get('ROS_DOMAIN_ID', '')).startswith('${ROS_DOMAIN_ID'), name
    robot = services['robot']
    rules = ' '.join(robot.get('device_cgroup_rules', []))
    devices = ' '.join(robot.get('devices', []))
    assert 'c 166:' in rules or '/dev/ttyACM' in devices, 'robot: serial servo adapters'
    assert 'c 81:' in rules or '/dev/video' in devices, 'robot: V4L2 cameras'
    if rules:  # cgroup rules give the right; the devices themselves come from a /dev bind
        assert any(v.split(':')[0] == '/dev' for v in robot.get('volumes', [])), robot
    gpu = services['policy']['deploy']['resources']['reservations']['devices']
    assert any(d.get('driver') == 'nvidia' and 'gpu' in d.get('capabilities', []) for d in gpu)


def test_compose_builds_name_existing_dockerfiles_and_their_arguments():
    for name, service in compose()['services'].items():
        build = service.get('build')
        if build is None:
            continue
        context = (DOCKER / build['context']).resolve()
        assert context == CONTEXT, f'{name}: the Dockerfiles COPY paths of the repository root'
        dockerfile = context / build.get('dockerfile', 'Dockerfile')
        assert dockerfile.is_file(), f'{name}: no {dockerfile}'
        declared = {
            arguments.split('=')[0]
            for keyword, arguments in dockerfile_instructions(dockerfile)
            if keyword == 'ARG'
        }
        unknown = set(build.get('args', {})) - declared
        assert not unknown, f'{name}: build args {unknown} are not ARGs of {dockerfile.name}'


@pytest.mark.parametrize('dockerfile', DOCKERFILES, ids=lambda p: p.name)
def test_every_file_a_dockerfile_copies_exists(dockerfile):
    copies = [
        arguments
        for keyword, arguments in dockerfile_instructions(dockerfile)
        if keyword in ('COPY', 'ADD')
    ]
    assert copies, 'the stack is copied into the image'
    for arguments in copies:
        argv = exec_form(arguments)
        if any(a.startswith('--from') for a in argv):
            continue  # from another stage or image, not the context
        sources = [a for a in argv if not a.startswith('--')][:-1]
        for source in sources:
            assert (CONTEXT / source).exists(), f'COPY {source}: not in the repository'


def test_every_repository_path_compose_mounts_exists():
    for name, service in compose()['services'].items():
        for volume in service.get('volumes', []):
            raw = volume if isinstance(volume, str) else volume.get('source', '')
            source = interpolate(raw.split(':')[0])
            if source.startswith(('.', '~')) or ('/' in source and not source.startswith('/')):
                assert (DOCKER / source).exists(), f'{name}: mounts {source}, not in the repo'
            elif source.startswith('/'):
                # Host paths outside the repository: /dev for devices, user data directories
                # from variables (their defaults are only examples).
                assert source == '/dev' or raw.startswith('${'), f'{name}: mounts {source}'


def test_the_torch_pin_the_dockerfile_installs_first_is_in_the_requirements():
    pins = [
        line
        for line in (ROOT / 'requirements' / 'dev.txt').read_text().splitlines()
        if line.startswith('torch==')
    ]
    assert len(pins) == 1, pins


@pytest.mark.parametrize(
    ('where', 'argv'),
    compose_commands() + dockerfile_commands(),
    ids=[w for w, _ in compose_commands() + dockerfile_commands()],
)
def test_every_command_names_a_real_entry_point(where, argv):
    scripts = console_scripts()
    if argv[0] == 'ros2':
        verb, package, target = argv[1:4]
        assert package in packages(), f'{where}: no package {package} in src/'
        if verb == 'run':
            assert target in scripts.get(package, ()), (
                f'{where}: {target} is not a console script of {package}'
            )
        else:
            assert verb == 'launch', f'{where}: ros2 {verb}'
            assert (ROOT / 'src' / package / 'launch' / target).is_file(), (
                f'{where}: {package} installs no launch file {target}'
            )
        executable, rest = target, argv[4:]
    else:
        assert any(argv[0] in names for names in scripts.values()), (
            f'{where}: {argv[0]} is no console script of src/*/setup.py'
        )
        executable, rest = argv[0], argv[1:]
    check_arguments(where, executable, rest)


def check_arguments(where: str, executable: str, argv: list[str]) -> None:
    """Launch arguments, `vla` arguments and node parameters are ones the stack declares."""
    from vla_bringup.graph import GRAPH_ARGUMENTS
    from vla_bringup.graph import build_graph
    from vla_bringup.graph import parse_arguments

    graph = {p.name for p in GRAPH_ARGUMENTS}
    named = named_arguments(argv[: argv.index('--ros-args')] if '--ros-args' in argv else argv)
    if executable == 'robot.launch.py':
        assert set(named) <= graph, f'{where}: unknown launch arguments {set(named) - graph}'
        build_graph(**parse_arguments(named))  # raises ConfigError on a bad value
    elif executable == 'vla':
        command, *_ = argv
        if command == 'record':
            from vla_bringup.cli import RECORD_ARGUMENTS

            known = graph | {p.name for p in RECORD_ARGUMENTS}
        else:
            assert command == 'train', f'{where}: add the arguments of vla {command} here'
            from vla_policy.train_params import TRAIN_PARAMETERS

            known = {p.name for p in TRAIN_PARAMETERS}
        assert set(named) <= known, f'{where}: unknown arguments {set(named) - known}'
    parameters = ros_parameters(argv)
    if parameters:
        known = {p.name for p in parameter_table(executable)}
        assert set(parameters) <= known, f'{where}: unknown parameters {set(parameters) - known}'


def test_container_paths_into_the_copied_sources_exist():
    """ENV values and command arguments naming /ws/<dir>/... of a directory the image copies."""
    copied = {
        exec_form(arguments)[-1].strip('/').removeprefix('./')
        for path in DOCKERFILES
        for keyword, arguments in dockerfile_instructions(path)
        if keyword == 'COPY'
    }
    values = [a for _, argv in compose_commands() + dockerfile_commands() for a in argv]
    for service in compose()['services'].values():
        values += [str(v) for v in service.get('environment', {}).values()]
    for path in DOCKERFILES:
        values += [a for k, a in dockerfile_instructions(path) if k == 'ENV']
    paths = {p for v in values for p in re.findall(rf'{WORKSPACE}/[\w./-]+', interpolate(v))}
    checked = 0
    for path in sorted(paths):
        relative = path.removeprefix(f'{WORKSPACE}/')
        if relative.split('/')[0] in copied:
            assert (ROOT / relative).exists(), f'{path}: no {relative} in the repository'
            checked += 1
    assert checked, 'the DDS profiles at least are named by container path'
