"""`vla_calibrate`: the terminal side of the calibration routine (servo/calibrate.py).

    vla_calibrate port:=/dev/ttyACM0 robot:=so101 arm:=follower out:=calib/so101_follower.yaml
    vla_calibrate port:=/dev/ttyDXL_left robot:=aloha side:=left arm:=leader out:=...

Errors end it with one line, `vla_calibrate: error: ...`, and the exit codes of the nodes
(2: configuration, 3: device).
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from vla_common.errors import EXIT_CONFIG_ERROR
from vla_common.errors import EXIT_DEVICE_ERROR
from vla_common.errors import ConfigError
from vla_common.errors import DeviceError
from vla_common.params import Param
from vla_common.params import resolve
from vla_common.robot_config import load_robot_config
from vla_control.servo.bus import open_bus
from vla_control.servo.calibrate import ROBOTS
from vla_control.servo.calibrate import run_calibration
from vla_control.servo.calibrate import servo_layout
from vla_control.servo.calibration import ArmCalibration

ARGUMENTS = (
    Param('port', '/dev/ttyACM0', "Serial port of the arm's bus adapter."),
    Param('robot', 'so101', 'Robot config (config/robots/<robot>.yaml): so101, so100, aloha.'),
    Param('arm', 'follower', 'follower or leader (recorded in the file).'),
    Param('side', '', 'aloha: left or right, the arm on this port.'),
    Param('out', '', 'The calibration file to write (required).'),
)


def terminal_ask(message: str, sample: Callable[[], None]) -> None:
    """Print the step; sample at 50 Hz until Enter."""
    print(f'\n{message}', flush=True)
    entered = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.readline(), entered.set()), daemon=True).start()
    while not entered.wait(0.02):
        sample()


def main(argv: list[str] | None = None) -> int:
    program = 'vla_calibrate'
    try:
        pairs = {}
        for item in sys.argv[1:] if argv is None else argv:
            name, sep, value = item.partition(':=')
            if not sep:
                raise ConfigError(f'expected name:=value ({", ".join(p.name for p in ARGUMENTS)})')
            pairs[name] = value
        args = resolve(ARGUMENTS, pairs)
        if args['arm'] not in ('follower', 'leader') or not args['out']:
            raise ConfigError('give arm:=follower|leader and out:=<calibration file>')
        config = load_robot_config(args['robot'])
        layout = servo_layout(args['robot'], args['side'])
        directions = _previous_directions(Path(args['out']), config)
        bus = open_bus(ROBOTS[args['robot']].bus, args['port'])
        try:
            calibration = run_calibration(
                bus, config, layout, args['arm'], terminal_ask, directions
            )
        finally:
            bus.close()
        calibration.save(args['out'])
    except ConfigError as exc:
        print(f'{program}: error: {exc}', file=sys.stderr)
        return EXIT_CONFIG_ERROR
    except DeviceError as exc:
        print(f'{program}: error: {exc}', file=sys.stderr)
        return EXIT_DEVICE_ERROR
    except KeyboardInterrupt:
        return 130
    print(f'wrote {args["out"]}:')
    for joint in calibration.joints:
        print(f'  {joint.name}: {joint.file_entry()}')
    return 0


def _previous_directions(path: Path, robot_config: Mapping[str, Any]) -> dict[str, int]:
    if not path.is_file():
        return {}
    try:
        previous = ArmCalibration.load(path, robot_config)
    except ConfigError:
        return {}  # a broken old file is replaced, not obeyed
    return {joint.name: joint.direction for joint in previous.joints}


if __name__ == '__main__':
    raise SystemExit(main())
