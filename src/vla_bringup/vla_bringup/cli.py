"""The `vla` command: runs the stack's node graph on machines with or without `ros2 launch`.

vla bringup robot:=so101 mode:=cameras sim:=true [--duration 10] [--dry-run]
vla record robot:=so101 sim:=true episodes:=10 dataset:=data/so101
vla train dataset:=data/so101 preset:=small_cpu output:=outputs/so101
vla eval robot:=so101 checkpoint:=outputs/so101/checkpoint episodes:=60
vla corrections checkpoint:=outputs/so101/checkpoint dataset:=data/so101_corrected episodes:=150
vla grounding output:=data/so101_grounding.npz scenes:=1500
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
    Param(
        'wait_for_key',
        '',
        'true: before each episode wait for Enter (reset the scene first); empty: true when '
        'sim:=false. Keys while recording: Enter/space stop and keep, d discard, q quit.',
    ),
)


def _split_arguments(items: list[str], table, mode: str) -> tuple[dict, dict]:
    """`name:=value` items -> (graph arguments for `mode`, the session's typed arguments)."""
    pairs = _launch_arguments(items)
    names = {p.name for p in table}
    graph_args = parse_arguments(
        {**{k: v for k, v in pairs.items() if k not in names}, 'mode': mode}
    )
    return graph_args, _typed({k: v for k, v in pairs.items() if k in names}, table, mode)


def _typed(pairs: dict[str, str], table, what: str) -> dict:
    """`name: text` pairs -> the table's values, typed by its defaults."""
    types = {p.name: type(p.default) for p in table}
    try:
        typed = {k: types[k](v) if k in types else v for k, v in pairs.items()}
    except ValueError as exc:
        raise ConfigError(f'bad {what} argument: {exc}') from None
    return resolve(table, typed)  # names not in the table are reported here


def _run_session(graph_args: dict, make_session) -> tuple[int, object]:
    """Start the graph, run `make_session(say).run()` beside it, stop the graph when it ends."""
    runner = GraphRunner(build_graph(**graph_args))
    session = make_session(runner.say)
    worker = threading.Thread(target=lambda: runner.request_stop(session.run()), daemon=True)
    worker.start()
    code = runner.run()
    worker.join(timeout=5.0)
    return code, session


def _record(args: argparse.Namespace) -> int:
    from vla_bringup.keyboard import TerminalKeys
    from vla_bringup.keyboard import parse_wait_for_key
    from vla_bringup.record_node import RecordingSession
    from vla_bringup.record_node import SessionPlan

    graph_args, session = _split_arguments(args.arguments, RECORD_ARGUMENTS, 'record')
    try:
        wait_for_key = parse_wait_for_key(session['wait_for_key'], graph_args['sim'])
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
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
        wait_for_key=wait_for_key,
    )
    # The terminal is in cbreak mode only while the session runs, and restored however it ends.
    with TerminalKeys() as keys:
        return _run_session(graph_args, lambda say: RecordingSession(plan, say, keys))[0]


def _eval(args: argparse.Namespace) -> int:
    from vla_bringup.eval_node import EvaluationSession
    from vla_bringup.evaluation import EVAL_ARGUMENTS
    from vla_bringup.evaluation import summarize
    from vla_bringup.evaluation import summary_text
    from vla_bringup.evaluation import write_summary
    from vla_common.robot_config import load_robot_config

    graph_args, arguments = _split_arguments(args.arguments, EVAL_ARGUMENTS, 'policy')
    if not graph_args['sim']:
        raise ConfigError('vla eval judges success in simulation: sim:=true')
    if arguments['episodes'] < 1 or not arguments['timeout_s'] > 0:
        raise ConfigError('episodes must be >= 1 and timeout_s > 0')
    robot = load_robot_config(graph_args['robot'])
    camera = next(iter(robot.get('cameras') or {'front': {}}))
    fps = float(robot.get('fps', 30))
    code, session = _run_session(
        graph_args, lambda say: EvaluationSession(arguments, camera, fps, say)
    )
    session.finish_video()  # Ctrl-C may have ended the graph in the middle of an episode
    if not session.results:
        return code or 1
    summary = summarize(
        session.results,
        session.inference_ms,
        session.chunk_delay_ms,
        session.controller_values(),
    )
    summary['arguments'] = {**graph_args, **arguments}
    output = Path(arguments['output'])
    write_summary(summary, output, session.inference_ms)
    print(summary_text(summary))
    print(f'written: {output / "summary.json"}, {output / "results.png"}')
    return code


def _corrections(args: argparse.Namespace) -> int:
    from vla_bringup.corrections import CORRECTION_ARGUMENTS
    from vla_bringup.corrections import record_corrections

    arguments = _typed(_launch_arguments(args.arguments), CORRECTION_ARGUMENTS, 'corrections')
    counts = record_corrections(arguments)
    return 0 if counts['kept'] or counts['policy succeeded'] else 1


def _grounding(args: argparse.Namespace) -> int:
    from vla_bringup.grounding import GROUNDING_ARGUMENTS
    from vla_bringup.grounding import write_grounding_scenes

    write_grounding_scenes(
        _typed(_launch_arguments(args.arguments), GROUNDING_ARGUMENTS, 'grounding')
    )
    return 0


def _train(args: argparse.Namespace) -> int:
    from vla_policy.train import main as train

    return train(args.arguments)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog='vla', description='vla_stack command line.')
    commands = parser.add_subparsers(dest='command', required=True)

    def command(name: str, handler, help_text: str, description: str):
        sub = commands.add_parser(name, help=help_text, description=description)
        sub.add_argument('arguments', nargs='*', metavar='name:=value')
        sub.set_defaults(handler=handler)
        return sub

    def listed(table) -> str:
        return '; '.join(f'{p.name} (default {p.default!r}): {p.description}' for p in table)

    bringup = command(
        'bringup',
        _bringup,
        'run the node graph (same nodes as robot.launch.py)',
        f'Run the node graph, one process per node. Arguments: {listed(GRAPH_ARGUMENTS)}',
    )
    bringup.add_argument('--duration', type=float, help='stop after this many seconds')
    bringup.add_argument('--dry-run', action='store_true', help='print the nodes, start nothing')
    bringup.add_argument(
        '--status-period',
        type=float,
        default=5.0,
        help='seconds between diagnostics summaries (0: none)',
    )
    command(
        'record',
        _record,
        'record episodes (sim: the scripted expert) into a LeRobot dataset',
        'Run the record graph and record episodes. Arguments name:=value: robot, sim, dataset, '
        f'camera_size (see bringup) and {listed(RECORD_ARGUMENTS)}',
    )
    from vla_bringup.evaluation import EVAL_ARGUMENTS
    from vla_policy.train_params import TRAIN_PARAMETERS

    command(
        'eval',
        _eval,
        'evaluate a policy checkpoint closed-loop in simulation',
        'Run seeded episodes through sim, controller and policy node; print and write the '
        'success rates and latencies. Arguments name:=value: robot, checkpoint, camera_size '
        f'(see bringup) and {listed(EVAL_ARGUMENTS)}',
    )
    from vla_bringup.corrections import CORRECTION_ARGUMENTS

    command(
        'corrections',
        _corrections,
        "record the scripted expert's corrections of a policy in simulation (DAgger)",
        'The policy drives seeded scenes until a random takeover time, the expert finishes '
        'the task, and the takeovers that succeed are appended to a dataset. Arguments '
        f'name:=value: {listed(CORRECTION_ARGUMENTS)}',
    )
    from vla_bringup.grounding import GROUNDING_ARGUMENTS

    command(
        'grounding',
        _grounding,
        'render scenes labelled with the grasp of every object, for vla train grounding:=',
        'Seeded simulated scenes, the arm at home or along an expert approach, each labelled '
        'with the instruction and grasp pose for every object an instruction can name. '
        f'Arguments name:=value: {listed(GROUNDING_ARGUMENTS)}',
    )
    command(
        'train',
        _train,
        'train or fine-tune the policy on a LeRobotDataset v3.0',
        f'Train the VLA. Arguments name:=value: {listed(TRAIN_PARAMETERS)}',
    )
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except ConfigError as exc:
        print(f'vla: error: {exc}', file=sys.stderr)
        return 2


if __name__ == '__main__':
    raise SystemExit(main())
