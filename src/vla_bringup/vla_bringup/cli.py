"""The `vla` command: runs the stack's node graph on machines with or without `ros2 launch`.

vla bringup robot:=so101 mode:=cameras sim:=true [--duration 10] [--dry-run]
vla record robot:=so101 sim:=true episodes:=10 dataset:=data/so101
vla train dataset:=data/so101 preset:=small_cpu output:=outputs/so101
"""

from __future__ import annotations

import argparse
import shlex
import sys
import threading
from pathlib import Path

from vla_bringup.graph import GRAPH_ARGUMENTS
from vla_bringup.graph import build_graph
from vla_bringup.graph import parse_arguments
from vla_bringup.runner import GraphRunner
from vla_bringup.runner import node_command
from vla_common.errors import ConfigError
from vla_common.params import Param
from vla_common.params import resolve


def _launch_arguments(items: list[str]) -> dict[str, str]:
    pairs = {}
    for item in items:
        name, sep, value = item.partition(':=')
        if not sep or not name:
            raise ConfigError(f'expected name:=value, got {item!r}')
        pairs[name] = value
    return pairs


def _bringup(args: argparse.Namespace) -> int:
    graph_args = parse_arguments(_launch_arguments(args.arguments))
    if graph_args['sim'] and graph_args['simulator'] == 'gazebo' and not args.dry_run:
        raise ConfigError(
            'Gazebo runs through launch on a ROS 2 install: '
            'ros2 launch vla_bringup robot.launch.py simulator:=gazebo'
        )
    specs = build_graph(**graph_args)
    if args.dry_run:
        for spec in specs:
            try:
                command = shlex.join(node_command(spec, Path(f'<{spec.name}.yaml>')))
            except ConfigError:
                command = f'{spec.package}/{spec.executable} (not installed here)'
            print(f'{spec.name}: {command}')
            print(f'    parameters: {spec.parameters}')
        return 0
    runner = GraphRunner(specs)
    monitor = None
    if args.status_period > 0:
        from vla_bringup.status_node import StatusMonitor

        monitor = StatusMonitor(lambda line: runner.say(f'status: {line}'), args.status_period)
    # The status lines end before the nodes are stopped, not in the middle of it.
    return runner.run(duration=args.duration, before_stop=monitor.close if monitor else None)


RECORD_ARGUMENTS = (
    Param('episodes', 1, 'Number of episodes to record.'),
    Param('episode_s', 8.0, 'Length of each episode in seconds.'),
    Param('seed', 0, 'sim: seed of the first scene (then seed + 1, ...).'),
    Param('task', '', "The instruction; empty in sim: the scene's own instruction."),
    Param('keep', 'all', 'all: keep every episode; success: only those the sim judged a success.'),
)


def _record(args: argparse.Namespace) -> int:
    from vla_bringup.record_node import RecordingSession
    from vla_bringup.record_node import SessionPlan

    pairs = _launch_arguments(args.arguments)
    session_names = {p.name for p in RECORD_ARGUMENTS}
    graph_pairs = {k: v for k, v in pairs.items() if k not in session_names}
    graph_args = parse_arguments({**graph_pairs, 'mode': 'record'})
    raw = {k: v for k, v in pairs.items() if k in session_names}
    types = {p.name: type(p.default) for p in RECORD_ARGUMENTS}
    try:
        typed = {k: types[k](v) for k, v in raw.items()}
    except ValueError as exc:
        raise ConfigError(f'bad record argument: {exc}') from None
    session = resolve(RECORD_ARGUMENTS, typed)
    if session['keep'] not in ('all', 'success') or session['episodes'] < 1:
        raise ConfigError('keep must be all or success, and episodes >= 1')
    if not session['episode_s'] > 0:
        raise ConfigError(f'episode_s must be > 0, got {session["episode_s"]}')
    if not graph_args['sim'] and not session['task']:
        raise ConfigError('on a real robot give the instruction: task:="pick up the red cube"')
    plan = SessionPlan(
        episodes=session['episodes'],
        episode_s=session['episode_s'],
        first_seed=session['seed'],
        task=session['task'],
        keep=session['keep'],
        sim=graph_args['sim'],
    )
    runner = GraphRunner(build_graph(**graph_args))
    recording = RecordingSession(plan, runner.say)
    worker = threading.Thread(target=lambda: runner.request_stop(recording.run()), daemon=True)
    worker.start()
    code = runner.run()
    worker.join(timeout=5.0)
    return code


def _train(args: argparse.Namespace) -> int:
    from vla_policy.train import main as train

    return train(args.arguments)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog='vla', description='vla_stack command line.')
    commands = parser.add_subparsers(dest='command', required=True)
    arguments_help = '; '.join(
        f'{p.name} (default {p.default}): {p.description}' for p in GRAPH_ARGUMENTS
    )
    bringup = commands.add_parser(
        'bringup',
        help='run the node graph (same nodes as robot.launch.py)',
        description=f'Run the node graph, one process per node. Arguments: {arguments_help}',
    )
    bringup.add_argument('arguments', nargs='*', metavar='name:=value')
    bringup.add_argument('--duration', type=float, help='stop after this many seconds')
    bringup.add_argument('--dry-run', action='store_true', help='print the nodes, start nothing')
    bringup.add_argument(
        '--status-period',
        type=float,
        default=5.0,
        help='seconds between diagnostics summaries (0: none)',
    )
    bringup.set_defaults(handler=_bringup)
    record_help = '; '.join(f'{p.name} (default {p.default!r})' for p in RECORD_ARGUMENTS)
    record = commands.add_parser(
        'record',
        help='record episodes (sim: the scripted expert) into a LeRobot dataset',
        description=f'Run the record graph and record episodes. Arguments name:=value: robot, '
        f'sim, dataset (see bringup) and {record_help}.',
    )
    record.add_argument('arguments', nargs='*', metavar='name:=value')
    record.set_defaults(handler=_record)
    from vla_policy.train_params import TRAIN_PARAMETERS

    train_help = '; '.join(
        f'{p.name} (default {p.default!r}): {p.description}' for p in TRAIN_PARAMETERS
    )
    train = commands.add_parser(
        'train',
        help='train or fine-tune the policy on a LeRobotDataset v3.0',
        description=f'Train the VLA. Arguments name:=value: {train_help}',
    )
    train.add_argument('arguments', nargs='*', metavar='name:=value')
    train.set_defaults(handler=_train)
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except ConfigError as exc:
        print(f'vla: error: {exc}', file=sys.stderr)
        return 2


if __name__ == '__main__':
    raise SystemExit(main())
