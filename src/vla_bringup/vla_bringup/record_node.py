"""`vla record`: drives a recording session over ROS while the runner supervises the graph.

For each episode: reset the simulated scene (seed = first_seed + k; on real robots the person
resets it), start an episode, record for `episode_s` seconds with a progress line every second,
stop it (keeping it, or only if the task succeeded), and finally stop the graph.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.executors import ExternalShutdownException
from rclpy.executors import SingleThreadedExecutor
from rclpy.signals import SignalHandlerOptions
from std_msgs.msg import Bool

from vla_common.qos import STATE_QOS
from vla_msgs.srv import ResetScene
from vla_msgs.srv import StartEpisode
from vla_msgs.srv import StopEpisode


class SessionError(RuntimeError):
    """The session cannot go on (a service is missing, the recorder refuses to start)."""


@dataclass(frozen=True)
class SessionPlan:
    episodes: int
    episode_s: float
    first_seed: int = 0
    task: str = ''  # empty: the scene's own instruction
    keep: str = 'all'  # 'all' or 'success'
    sim: bool = True


class RecordingSession:
    def __init__(self, plan: SessionPlan, say: Callable[[str], None]):
        self.plan = plan
        self.say = say
        self.saved = 0
        self._context = rclpy.Context()
        # args=[]: the vla command line is not ROS arguments; the runner owns Ctrl-C.
        rclpy.init(args=[], context=self._context, signal_handler_options=SignalHandlerOptions.NO)
        self._node = rclpy.create_node('vla_record', context=self._context)
        self._success = False
        self._recorder_values: dict[str, str] = {}
        self._clients: dict[str, object] = {}
        self._node.create_subscription(Bool, 'sim/success', self._on_success, STATE_QOS)
        self._node.create_subscription(
            DiagnosticArray, 'diagnostics', self._on_diagnostics, STATE_QOS
        )
        self._executor = SingleThreadedExecutor(context=self._context)
        self._executor.add_node(self._node)
        self._spinner = threading.Thread(target=self._spin, daemon=True)
        self._spinner.start()

    def _spin(self) -> None:
        try:
            self._executor.spin()
        except ExternalShutdownException:
            pass

    def _on_success(self, msg: Bool) -> None:
        self._success = self._success or msg.data

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            if status.name.endswith(': recorder'):
                self._recorder_values = {kv.key: kv.value for kv in status.values}

    def _call(self, srv_type, name: str, request, timeout: float = 30.0):
        if name not in self._clients:  # one client per service for the whole session
            self._clients[name] = self._node.create_client(srv_type, name)
        client = self._clients[name]
        if not client.wait_for_service(timeout_sec=timeout):
            raise SessionError(f'service {name} did not appear within {timeout:g} s')
        future = client.call_async(request)
        end = time.monotonic() + timeout
        while not future.done():
            if time.monotonic() > end:
                future.cancel()
                raise SessionError(f'{name} did not answer within {timeout:g} s')
            time.sleep(0.01)
        return future.result()

    def _start_episode(self, task: str) -> StartEpisode.Response:
        """Start as soon as the recorder has every source (discovery takes seconds)."""
        end = time.monotonic() + 60.0
        while True:
            answer = self._call(
                StartEpisode, 'recorder/start_episode', StartEpisode.Request(instruction=task)
            )
            if answer.success:
                return answer
            if time.monotonic() > end:
                raise SessionError(f'the recorder did not start: {answer.message}')
            time.sleep(0.5)

    def run(self) -> int:
        """Record every episode; returns an exit code (0: all done)."""
        plan = self.plan
        try:
            for k in range(plan.episodes):
                seed = plan.first_seed + k
                task = plan.task
                if plan.sim:
                    reset = self._call(ResetScene, 'sim/reset', ResetScene.Request(seed=seed))
                    if not reset.success:
                        raise SessionError(f'sim/reset failed: {reset.message}')
                    task = task or reset.instruction
                    time.sleep(0.3)  # the expert and the instruction reach everyone
                self._success = False
                started = self._start_episode(task)
                begin = time.monotonic()
                while (elapsed := time.monotonic() - begin) < plan.episode_s:
                    time.sleep(min(1.0, plan.episode_s - elapsed))
                    values = self._recorder_values
                    self.say(
                        f'episode {k + 1}/{plan.episodes} ({started.episode_index}) '
                        f'{min(elapsed + 1, plan.episode_s):4.1f}/{plan.episode_s:g} s  '
                        f'frames {values.get("frames", "?")}  '
                        f'repeated {values.get("repeated_frames", "?") or 0}'
                        + (f'  success {self._success}' if plan.sim else '')
                    )
                keep = plan.keep == 'all' or self._success
                stopped = self._call(
                    StopEpisode, 'recorder/stop_episode', StopEpisode.Request(keep=keep)
                )
                if not stopped.success:
                    self.say(f'episode {k + 1}: {stopped.message}')
                    continue
                self.saved += keep
                self.say(f'episode {k + 1}/{plan.episodes}: "{task}" {stopped.message}')
            self.say(f'done: {self.saved} of {plan.episodes} episodes saved')
            return 0
        except SessionError as exc:
            self.say(f'error: {exc}')
            return 1
        finally:
            self.close()

    def close(self) -> None:
        self._context.try_shutdown()
        self._spinner.join(timeout=2.0)
        self._executor.shutdown(timeout_sec=1.0)
        self._node.destroy_node()
