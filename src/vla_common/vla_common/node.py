"""The ROS side shared by every node: parameter declaration and the `main()` wrapper."""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable
from collections.abc import Iterable
from typing import Any

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from diagnostic_msgs.msg import DiagnosticStatus
from diagnostic_msgs.msg import KeyValue
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.exceptions import NameValidationException
from rclpy.exceptions import ParameterException
from rclpy.executors import ExternalShutdownException
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo

from vla_common.diagnostics import Health
from vla_common.errors import EXIT_CONFIG_ERROR
from vla_common.errors import EXIT_DEVICE_ERROR
from vla_common.errors import ConfigError
from vla_common.errors import DeviceError
from vla_common.params import Param
from vla_common.params import resolve


class VlaNode(Node):
    """A Node that can ask `run_node` to stop with an exit code and a reason."""

    exit_code: int | None = None

    def start_worker(
        self,
        target: Callable[[], None],
        stop: Callable[[], None],
        name: str,
        join_timeout: float = 5.0,
    ) -> None:
        """Run `target` in a daemon thread; destroy_node calls `stop` and joins it."""
        thread = threading.Thread(target=target, name=name, daemon=True)
        if not hasattr(self, '_workers'):
            self._workers: list[tuple[threading.Thread, Callable[[], None], float]] = []
        self._workers.append((thread, stop, join_timeout))
        thread.start()

    def destroy_node(self) -> None:
        for thread, stop, join_timeout in getattr(self, '_workers', []):
            stop()
            thread.join(timeout=join_timeout)
        super().destroy_node()

    def request_exit(self, code: int, reason: str) -> None:
        """Stop spinning; `run_node` logs `reason` and returns `code`."""
        if code:
            self.get_logger().error(reason)
        else:
            self.get_logger().info(reason)
        self.exit_code = code


def pinhole_camera_info(
    width: int, height: int, intrinsics: tuple[float, float, float, float], frame_id: str
) -> CameraInfo:
    """CameraInfo of an ideal pinhole camera (no distortion) from fx, fy, cx, cy."""
    fx, fy, cx, cy = intrinsics
    info = CameraInfo(width=width, height=height, distortion_model='plumb_bob')
    info.header.frame_id = frame_id
    info.d = [0.0] * 5
    info.k = [fx, 0.0, cx, 0.0, fy, cy, 0.0, 0.0, 1.0]
    info.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    info.p = [fx, 0.0, cx, 0.0, 0.0, fy, cy, 0.0, 0.0, 0.0, 1.0, 0.0]
    return info


def diagnostic_array(node: Node, health: Health, what: str, hardware_id: str) -> DiagnosticArray:
    """One DiagnosticStatus named `<node>: <what>`, stamped now."""
    status = DiagnosticStatus(
        level=bytes([int(health.level)]),
        name=f'{node.get_name()}: {what}',
        message=health.message,
        hardware_id=hardware_id,
        values=[KeyValue(key=k, value=v) for k, v in health.values.items()],
    )
    array = DiagnosticArray(status=[status])
    array.header.stamp = node.get_clock().now().to_msg()
    return array


def declare_parameters(node: Node, table: Iterable[Param]) -> dict[str, Any]:
    """Declare the table's parameters on `node` and return their checked values.

    Parameters are declared with dynamic typing so that the table's own check (with a message
    naming the parameter) runs instead of rclpy's type exception.
    """
    table = list(table)
    descriptor = {
        p.name: ParameterDescriptor(description=p.description, dynamic_typing=True) for p in table
    }
    node.declare_parameters('', [(p.name, p.default, descriptor[p.name]) for p in table])
    values = {p.name: node.get_parameter(p.name).value for p in table}
    # rclpy silently ignores overrides that nothing declares; a typo in a parameter file
    # ("fsp: 30") must not run with the default. There is no public API for the overrides.
    overrides = getattr(node, '_parameter_overrides', None)
    if overrides is None:
        node.get_logger().warning('this rclpy hides parameter overrides: typos go unnoticed')
        overrides = {}
    values.update({name: o.value for name, o in overrides.items() if not node.has_parameter(name)})
    return resolve(table, values)


def run_node(make_node: Callable[[], VlaNode], args: list[str] | None = None) -> int:
    """Init rclpy, build the node, spin until Ctrl-C or `request_exit`, and return an exit code.

    Start-up failures (malformed parameter file, bad parameter, missing device) end the process
    with one line on stderr, `<program>: error: <what is wrong>`, and a non-zero code.
    """
    program = os.path.basename(sys.argv[0]) or 'node'

    def fail(code: int, what: str) -> int:
        print(f'{program}: error: {what}', file=sys.stderr, flush=True)
        return code

    try:
        rclpy.init(args=args)
    except Exception as exc:  # rclpy raises RCLError for a malformed --params-file
        return fail(EXIT_CONFIG_ERROR, _first_line(f'cannot start ROS: {exc}'))
    node = None
    try:
        node = make_node()
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        while rclpy.ok() and node.exit_code is None:
            executor.spin_once(timeout_sec=0.1)
        return node.exit_code or 0
    except (ConfigError, ParameterException, NameValidationException) as exc:
        return fail(EXIT_CONFIG_ERROR, _first_line(str(exc)))
    except DeviceError as exc:
        return fail(EXIT_DEVICE_ERROR, _first_line(str(exc)))
    except (KeyboardInterrupt, ExternalShutdownException):
        return 0
    except Exception:
        if rclpy.ok():
            raise  # a real failure: the traceback says where
        # Ctrl-C arrived mid-call (e.g. while the node was still starting): ROS objects now
        # refuse use with RCLError. That is a shutdown, not an error.
        return 0
    finally:
        try:
            if node is not None:
                node.destroy_node()
            rclpy.try_shutdown()
        except Exception as exc:  # teardown after a shutdown race: say it in one line
            print(f'{program}: warning: during shutdown: {_first_line(str(exc))}', file=sys.stderr)


def _first_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[0] if lines else text
