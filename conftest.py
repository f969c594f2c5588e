"""Fixtures for tests that start real nodes as processes and talk to them over DDS.

    def test_camera(launch_node, ros):
        images = ros.subscribe(Image, 'camera/front/image_raw', IMAGE_QOS)
        launch_node('vla_perception', 'camera_node', params={'name': 'front'})
        ros.wait_for(lambda: len(images) >= 3, timeout=10, what='3 images')

Every test run gets its own ROS_DOMAIN_ID and the localhost Fast DDS profile (shared memory
for large frames, loopback UDP for discovery), set before anything imports rclpy.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

LOCALHOST_PROFILE = Path(__file__).parent / 'config' / 'dds' / 'fastdds_localhost.xml'


def pytest_configure(config):
    # One domain per test run, so runs on the same host never see each other.
    os.environ['ROS_DOMAIN_ID'] = str(random.Random(os.getpid()).randint(1, 100))
    # Shared memory + loopback UDP only: nothing leaves the machine, large frames arrive.
    # (Fast DDS 2.x, e.g. Humble, reads the FASTRTPS_ name; 3.x warns that it is deprecated.)
    name = 'FASTRTPS' if os.environ.get('ROS_DISTRO') == 'humble' else 'FASTDDS'
    os.environ[f'{name}_DEFAULT_PROFILES_FILE'] = str(LOCALHOST_PROFILE)
    os.environ.pop('ROS_AUTOMATIC_DISCOVERY_RANGE', None)  # it would drop large frames
    os.environ.pop('ROS_LOCALHOST_ONLY', None)
    os.environ.setdefault('RMW_IMPLEMENTATION', 'rmw_fastrtps_cpp')
    os.environ.setdefault('MUJOCO_GL', 'egl')  # headless rendering
    # A suite started with `&` from a non-interactive shell inherits SIGINT ignored, and so
    # would every node and terminal the tests start and then stop with Ctrl-C. A handled
    # signal is reset to its default across exec, an ignored one is not: handle it here.
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


class Received(list):
    """Messages of one subscription, with their arrival times (time.time())."""

    def __init__(self):
        super().__init__()
        self.arrival: list[float] = []
        self.lock = threading.Lock()

    def add(self, msg) -> None:
        with self.lock:
            self.arrival.append(time.time())
            self.append(msg)


class RosProbe:
    """An in-process rclpy node, spun in a background thread, for the test to observe with."""

    def __init__(self):
        import rclpy
        from rclpy.executors import SingleThreadedExecutor

        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node(f'test_probe_{os.getpid()}', context=self.context)
        # Single-threaded on purpose: rclpy's MultiThreadedExecutor can spin hot while one
        # callback runs (its other thread re-waits on the same ready entity), starving the
        # process; seen here as joint_states published at 10 Hz instead of 100.
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        from rclpy.executors import ExternalShutdownException

        try:
            self.executor.spin()
        except ExternalShutdownException:
            pass

    def subscribe(self, msg_type, topic: str, qos) -> Received:
        received = Received()
        self.node.create_subscription(msg_type, topic, received.add, qos)
        return received

    def wait_for(
        self,
        condition: Callable[[], bool],
        timeout: float,
        what: str,
        details: Callable[[], str] | None = None,
    ) -> None:
        """Wait until `condition()` is true, or fail the test saying what did not happen
        (and `details()`, e.g. the output of the processes under test)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if condition():
                return
            time.sleep(0.05)
        more = f':\n{details()}' if details else ''
        pytest.fail(f'timed out after {timeout:g} s waiting for {what}{more}')

    def close(self) -> None:
        self.context.try_shutdown()  # ends the spin; then nothing uses the node
        self._thread.join(timeout=2.0)
        self.executor.shutdown(timeout_sec=2.0)
        self.node.destroy_node()


@pytest.fixture
def ros():
    probe = RosProbe()
    yield probe
    probe.close()


class NodeProcess:
    """A node started as its own process; output goes to a log file the test can read."""

    def __init__(self, command: list[str], log_path: Path, env: dict[str, str] | None = None):
        self.command = command
        self.log_path = log_path
        self._log = log_path.open('w')
        self.process = subprocess.Popen(
            command,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, 'PYTHONUNBUFFERED': '1', **(env or {})},
        )

    @property
    def output(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors='replace')

    def wait_exit(self, timeout: float) -> int:
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f'{self.command[0]} did not exit within {timeout:g} s:\n{self.output}')

    def expect_one_error_line(self, code: int, message: str, timeout: float = 30.0) -> None:
        """The process exits with `code` and one `<program>: error: ...` line containing
        `message`, and no traceback (the contract of vla_common.node.run_node)."""
        assert self.wait_exit(timeout) == code, self.output
        program = Path(self.command[0]).name
        errors = [line for line in self.output.splitlines() if f'{program}: error:' in line]
        assert len(errors) == 1, self.output
        assert message in errors[0]
        assert 'Traceback' not in self.output

    def stop(self, sig: int = signal.SIGINT, timeout: float = 10.0) -> int:
        """Send `sig` and wait; escalate to SIGKILL if the process does not exit."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
        return self.process.returncode


@pytest.fixture
def launch_node(tmp_path):
    """Factory: launch_node(package, executable, name=..., params={...}) -> NodeProcess."""
    from vla_bringup.graph import NodeSpec
    from vla_bringup.runner import node_command

    started: list[NodeProcess] = []

    def launch(
        package: str,
        executable: str,
        name: str | None = None,
        params=None,
        remappings=(),
        extra_args=(),
        params_file: Path | None = None,
    ) -> NodeProcess:
        spec = NodeSpec(package, executable, name or executable, dict(params or {}), remappings)
        if params_file is None:
            params_file = tmp_path / f'{spec.name}.params.yaml'
            params_file.write_text(yaml.safe_dump({'/**': {'ros__parameters': spec.parameters}}))
        command = [*node_command(spec, params_file), *extra_args]
        node = NodeProcess(command, tmp_path / f'{spec.name}.log')
        started.append(node)
        return node

    yield launch
    for node in started:
        node.stop()


@pytest.fixture
def run_command(tmp_path):
    """Factory: run_command(argv, name, env) -> NodeProcess for CLIs such as `vla bringup`."""
    started: list[NodeProcess] = []

    def run(argv: list[str], name: str, env: dict[str, str] | None = None) -> NodeProcess:
        process = NodeProcess(argv, tmp_path / f'{name}.log', env)
        started.append(process)
        return process

    yield run
    for process in started:
        process.stop()
