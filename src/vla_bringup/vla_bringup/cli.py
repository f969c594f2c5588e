"""The `vla` command: runs the stack's node graph on machines with or without `ros2 launch`.

vla bringup robot:=so101 mode:=cameras sim:=true [--duration 10] [--dry-run]
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from vla_bringup.graph import GRAPH_ARGUMENTS
from vla_bringup.graph import build_graph
from vla_bringup.graph import parse_arguments
from vla_bringup.runner import GraphRunner
from vla_bringup.runner import node_command
from vla_common.errors import ConfigError


def _launch_arguments(items: list[str]) -> dict[str, str]:
    pairs = {}
    for item in items:
        name, sep, value = item.partition(':=')
        if not sep or not name:
            raise ConfigError(f'expected name:=value, got {item!r}')
        pairs[name] = value
    return pairs


def _bringup(args: argparse.Namespace) -> int:
    specs = build_graph(**parse_arguments(_launch_arguments(args.arguments)))
    if args.dry_run:
        for spec in specs:
            print(f'{spec.name}: {shlex.join(node_command(spec, Path(f"<{spec.name}.yaml>")))}')
            print(f'    parameters: {spec.parameters}')
        return 0
    runner = GraphRunner(specs)
    monitor = None
    if args.status_period > 0:
        from vla_bringup.status_node import StatusMonitor

        monitor = StatusMonitor(lambda line: runner.say(f'status: {line}'), args.status_period)
    try:
        return runner.run(duration=args.duration)
    finally:
        if monitor is not None:
            monitor.close()


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
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except ConfigError as exc:
        print(f'vla: error: {exc}', file=sys.stderr)
        return 2


if __name__ == '__main__':
    raise SystemExit(main())
