"""A client of a running graph: the `vla record` and `vla eval` sessions talk to it over ROS.

The runner supervises the node processes; a session is one more node, in the `vla` process,
that calls services and actions from its own thread while an executor spins in the background.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.action import ActionClient
from rclpy.executors import ExternalShutdownException
from rclpy.executors import SingleThreadedExecutor
from rclpy.signals import SignalHandlerOptions

from vla_common.qos import STATE_QOS


class SessionError(RuntimeError):
    """The session cannot go on (a service is missing, a node refuses)."""


class GraphSession:
    """An rclpy node in its own context, spun in a thread; calls block the caller only."""

    def __init__(self, name: str, actions: Sequence[tuple[type, str]] = ()) -> None:
        self._context = rclpy.Context()
        # args=[]: the vla command line is not ROS arguments; the runner owns Ctrl-C.
        rclpy.init(args=[], context=self._context, signal_handler_options=SignalHandlerOptions.NO)
        self.node = rclpy.create_node(name, context=self._context)
        # Action clients are made before the executor spins: rclpy adds one to the node before
        # it is whole, and a spin in between fails on it ('ActionClient' has no '_lock').
        self.actions = {n: ActionClient(self.node, kind, n) for kind, n in actions}
        self._clients: dict[str, object] = {}
        self.diagnostics: dict[str, tuple[dict[str, str], float]] = {}
        """Latest values per diagnostics status suffix (e.g. 'recorder'), with arrival time."""
        self.node.create_subscription(
            DiagnosticArray, 'diagnostics', self._on_diagnostics, STATE_QOS
        )
        self._executor = SingleThreadedExecutor(context=self._context)
        self._executor.add_node(self.node)
        self._spinner = threading.Thread(target=self._spin, daemon=True)
        self._spinner.start()

    def _spin(self) -> None:
        try:
            self._executor.spin()
        except ExternalShutdownException:
            pass

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            what = status.name.rpartition(': ')[2]
            self.diagnostics[what] = ({kv.key: kv.value for kv in status.values}, time.monotonic())

    def diagnostics_after(self, what: str, since: float, timeout: float = 3.0) -> dict[str, str]:
        """The first `what` diagnostics values that arrived after monotonic time `since`."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            values, arrived = self.diagnostics.get(what, ({}, 0.0))
            if arrived > since:
                return values
            time.sleep(0.05)
        return self.diagnostics.get(what, ({}, 0.0))[0]

    def wait(self, future, what: str, timeout: float):
        """Block until an rclpy future is done (the executor thread completes it)."""
        end = time.monotonic() + timeout
        while not future.done():
            if time.monotonic() > end:
                future.cancel()
                raise SessionError(f'{what} did not answer within {timeout:g} s')
            time.sleep(0.01)
        return future.result()

    def call(self, srv_type, name: str, request, timeout: float = 30.0):
        if name not in self._clients:  # one client per service for the whole session
            self._clients[name] = self.node.create_client(srv_type, name)
        client = self._clients[name]
        if not client.wait_for_service(timeout_sec=timeout):
            raise SessionError(f'service {name} did not appear within {timeout:g} s')
        return self.wait(client.call_async(request), name, timeout)

    def close(self) -> None:
        self._context.try_shutdown()
        self._spinner.join(timeout=2.0)
        self._executor.shutdown(timeout_sec=1.0)
        self.node.destroy_node()
