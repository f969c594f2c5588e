"""Run a node graph without ros2 launch: one process per node, output prefixed by node name.

Ctrl-C (or SIGTERM) stops every node: SIGINT first, then SIGTERM, then SIGKILL for a node that
does not exit. When a required node exits, the runner says which and why, and stops the rest.
"""

from __future__ import annotations

import collections
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path

import yaml

from vla_bringup.graph import NodeSpec
from vla_common.errors import EXIT_REASONS
from vla_common.errors import ConfigError

STOP_GRACE_S = 5.0


def find_executable(package: str, executable: str) -> Path:
    """Where `ros2 run package executable` would find it, or next to this Python (venv)."""
    candidates = []
    try:
        from ament_index_python.packages import get_package_prefix

        candidates.append(Path(get_package_prefix(package)) / 'lib' / package / executable)
    except (ImportError, LookupError):
        pass
    candidates.append(Path(sys.executable).parent / executable)
    on_path = shutil.which(executable)
    if on_path:
        candidates.append(Path(on_path))
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    raise ConfigError(
        f'executable {executable!r} of package {package!r} not found '
        '(is the package installed? run scripts/setup.sh, or colcon build and source install/)'
    )


def node_command(spec: NodeSpec, params_file: Path) -> list[str]:
    """The command line of one node: its executable with ROS arguments."""
    command = [str(find_executable(spec.package, spec.executable)), *spec.arguments, '--ros-args']
    command += ['-r', f'__node:={spec.name}', '--params-file', str(params_file)]
    for source, target in spec.remappings:
        command += ['-r', f'{source}:={target}']
    return command


@dataclass
class _Running:
    spec: NodeSpec
    process: subprocess.Popen
    tail: collections.deque = field(default_factory=lambda: collections.deque(maxlen=5))
    reader: threading.Thread | None = None


class GraphRunner:
    """Starts the nodes of a graph and supervises them until stopped or one fails."""

    def __init__(self, specs: Sequence[NodeSpec], out=None):
        self.specs = list(specs)
        self._out = out or sys.stdout
        self._print_lock = threading.Lock()
        self._running: list[_Running] = []
        self._stop_requested = threading.Event()
        self._stop_code = 0
        self._workdir: Path | None = None

    def say(self, text: str) -> None:
        with self._print_lock:
            print(f'[vla] {text}', file=self._out, flush=True)

    def run(self, duration: float | None = None, before_stop=None) -> int:
        """Run until Ctrl-C, `duration` seconds, or a required node exits; return an exit code.

        `before_stop` (optional) is called once the graph is to stop, before the nodes are.
        """
        # SIGHUP too: a closed terminal or a dropped ssh session must not orphan the nodes.
        signals = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
        previous = {sig: signal.signal(sig, self._on_signal) for sig in signals}
        self._workdir = Path(tempfile.mkdtemp(prefix='vla_bringup_'))
        try:
            try:
                for spec in self.specs:
                    self._start(spec)
            except ConfigError as exc:
                self.say(f'error: {exc}')
                return 2
            return self._supervise(duration)
        finally:
            if before_stop is not None:
                before_stop()
            self.stop()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            shutil.rmtree(self._workdir, ignore_errors=True)

    def request_stop(self, code: int = 0) -> None:
        """Stop the graph (from any thread); `run` then returns `code`."""
        self._stop_code = code
        self._stop_requested.set()

    def _on_signal(self, signum, frame) -> None:
        self.request_stop()

    def _start(self, spec: NodeSpec) -> None:
        params_file = self._workdir / f'{spec.name}.yaml'
        params_file.write_text(yaml.safe_dump({'/**': {'ros__parameters': spec.parameters}}))
        command = node_command(spec, params_file)
        env = {**os.environ, 'PYTHONUNBUFFERED': '1'}
        # Own session: a terminal Ctrl-C reaches only the runner, which stops nodes in order.
        process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
            text=True,
            errors='replace',
            preexec_fn=_terminate_with_parent,
        )
        running = _Running(spec, process)
        running.reader = threading.Thread(target=self._pump, args=(running,), daemon=True)
        running.reader.start()
        self._running.append(running)
        self.say(f'started {spec.name} ({spec.package}/{spec.executable}, pid {process.pid})')

    def _pump(self, running: _Running) -> None:
        for line in running.process.stdout:
            line = line.rstrip('\n')
            running.tail.append(line)
            with self._print_lock:
                print(f'[{running.spec.name}] {line}', file=self._out, flush=True)

    def _supervise(self, duration: float | None) -> int:
        deadline = None if duration is None else time.monotonic() + duration
        while not self._stop_requested.wait(0.1):
            if deadline is not None and time.monotonic() >= deadline:
                self.say(f'{duration:g} s elapsed, stopping')
                return 0
            for running in self._running:
                code = running.process.poll()
                if code is None or not running.spec.required:
                    continue
                if running.reader is not None:
                    running.reader.join(timeout=1.0)  # collect its last lines
                return self._report_exit(running, code)
        self.say('stopping')
        return self._stop_code

    def _report_exit(self, running: _Running, code: int) -> int:
        spec = running.spec
        if code == 0:
            self.say(f'required node {spec.name} finished; stopping the graph')
            return 0
        reason = EXIT_REASONS.get(code) or (
            f'killed by signal {-code}' if code < 0 else f'exit code {code}'
        )
        last = next((line for line in reversed(running.tail) if line.strip()), '')
        self.say(
            f'error: required node {spec.name} ({spec.package}/{spec.executable}) failed: '
            f'{reason}' + (f': {last}' if last else '')
        )
        return 1

    def stop(self) -> None:
        """Stop every node still running: SIGINT, then SIGTERM, then SIGKILL."""
        alive = [r for r in self._running if r.process.poll() is None]
        for sig, grace in (
            (signal.SIGINT, STOP_GRACE_S),
            (signal.SIGTERM, 2.0),
            (signal.SIGKILL, 2.0),
        ):
            for running in alive:
                try:
                    os.killpg(running.process.pid, sig)
                except ProcessLookupError:
                    pass
            end = time.monotonic() + grace
            while alive and time.monotonic() < end:
                alive = [r for r in alive if r.process.poll() is None]
                time.sleep(0.05)
            if not alive:
                break
            names = ', '.join(r.spec.name for r in alive)
            self.say(f'{names} still running after {sig.name}')
        for running in self._running:
            if running.reader is not None:
                running.reader.join(timeout=1.0)


def _parent_death_signal():
    """A function for the child that asks Linux for SIGTERM when the runner dies, or None.

    Resolved here, in the parent: a child forked from a threaded process may only do
    async-signal-safe work before exec, so it must not import or load libraries.
    """
    try:
        import ctypes

        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None  # not Linux: Ctrl-C, SIGTERM and SIGHUP still stop the nodes

    def set_signal() -> None:
        prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG

    return set_signal


_terminate_with_parent = _parent_death_signal()
