"""A background ROS node for `vla bringup`: a one-line summary of `diagnostics` every few seconds.

So that a user running the graph sees at a glance whether every node is healthy, without
`ros2 topic echo` (which the pip-ROS environment does not have).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.executors import ExternalShutdownException
from rclpy.executors import SingleThreadedExecutor

from vla_common.qos import STATE_QOS

LEVELS = {0: 'OK', 1: 'WARN', 2: 'ERROR', 3: 'STALE'}
STALE_AFTER_S = 3.0  # diagnostics come every second: three missed reports mean a silent node

Status = tuple[int, str, dict[str, str], float]  # level, message, values, arrival (monotonic)


def summarize(statuses: dict[str, Status], now: float) -> str:
    """One line: each status as `name LEVEL message (fps)`, sorted by name."""
    parts = []
    for name, (level, message, values, arrival) in sorted(statuses.items()):
        if now - arrival > STALE_AFTER_S:
            parts.append(f'{name} STALE (no report for {now - arrival:.0f} s)')
            continue
        fps = values.get('fps_measured')
        parts.append(
            f'{name} {LEVELS.get(level, level)} {message}' + (f' ({fps} fps)' if fps else '')
        )
    return '; '.join(parts) if parts else 'no diagnostics yet'


class StatusMonitor:
    """Subscribes to diagnostics in its own context and thread; `say` gets the summary."""

    def __init__(self, say: Callable[[str], None], period_s: float = 5.0):
        self._say = say
        self._statuses: dict[str, Status] = {}
        self._context = rclpy.Context()
        # args=[]: the vla command line (robot:=so101 ...) is not ROS remapping rules
        rclpy.init(args=[], context=self._context, signal_handler_options=_no_signal_handlers())
        self._node = rclpy.create_node('vla_bringup_status', context=self._context)
        self._node.create_subscription(
            DiagnosticArray, 'diagnostics', self._on_diagnostics, STATE_QOS
        )
        self._node.create_timer(
            period_s, lambda: self._say(summarize(self._statuses, time.monotonic()))
        )
        self._executor = SingleThreadedExecutor(context=self._context)
        self._executor.add_node(self._node)
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _on_diagnostics(self, array: DiagnosticArray) -> None:
        for status in array.status:
            values = {kv.key: kv.value for kv in status.values}
            self._statuses[status.name] = (
                status.level[0],
                status.message,
                values,
                time.monotonic(),
            )

    def _spin(self) -> None:
        try:
            self._executor.spin()
        except ExternalShutdownException:
            pass

    def close(self) -> None:
        self._context.try_shutdown()  # wakes the spinning thread; then nothing uses the node
        self._thread.join(timeout=2.0)
        self._executor.shutdown(timeout_sec=1.0)
        self._node.destroy_node()


def _no_signal_handlers():
    """The runner handles Ctrl-C itself: rclpy must not install its own handlers here."""
    from rclpy.signals import SignalHandlerOptions

    return SignalHandlerOptions.NO
