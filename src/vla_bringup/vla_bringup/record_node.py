"""`vla record`: drives a recording session over ROS while the runner supervises the graph.

For each episode: reset the simulated scene (seed = first_seed + k; on real robots the person
resets it), start an episode, record for `episode_s` seconds with a progress line every second,
stop it (keeping it, or only if the task succeeded), and finally stop the graph.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from std_msgs.msg import Bool

from vla_bringup.session_node import GraphSession
from vla_bringup.session_node import SessionError
from vla_common.qos import STATE_QOS
from vla_msgs.srv import ResetScene
from vla_msgs.srv import StartEpisode
from vla_msgs.srv import StopEpisode


@dataclass(frozen=True)
class SessionPlan:
    episodes: int
    episode_s: float
    first_seed: int = 0
    task: str = ''  # empty: the scene's own instruction
    keep: str = 'all'  # 'all' or 'success'
    sim: bool = True


class RecordingSession(GraphSession):
    def __init__(self, plan: SessionPlan, say: Callable[[str], None]):
        super().__init__('vla_record')
        self.plan = plan
        self.say = say
        self.saved = 0
        self._success = False
        self.node.create_subscription(Bool, 'sim/success', self._on_success, STATE_QOS)

    def _on_success(self, msg: Bool) -> None:
        self._success = self._success or msg.data

    def _start_episode(self, task: str) -> StartEpisode.Response:
        """Start as soon as the recorder has every source (discovery takes seconds)."""
        end = time.monotonic() + 60.0
        while True:
            answer = self.call(
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
                    reset = self.call(ResetScene, 'sim/reset', ResetScene.Request(seed=seed))
                    if not reset.success:
                        raise SessionError(f'sim/reset failed: {reset.message}')
                    task = task or reset.instruction
                    time.sleep(0.3)  # the expert and the instruction reach everyone
                self._success = False
                started = self._start_episode(task)
                begin = time.monotonic()
                while (elapsed := time.monotonic() - begin) < plan.episode_s:
                    time.sleep(min(1.0, plan.episode_s - elapsed))
                    values = self.diagnostics.get('recorder', ({}, 0.0))[0]
                    self.say(
                        f'episode {k + 1}/{plan.episodes} ({started.episode_index}) '
                        f'{min(elapsed + 1, plan.episode_s):4.1f}/{plan.episode_s:g} s  '
                        f'frames {values.get("frames", "?")}  '
                        f'repeated {values.get("repeated_frames", "?") or 0}'
                        + (f'  success {self._success}' if plan.sim else '')
                    )
                keep = plan.keep == 'all' or self._success
                stopped = self.call(
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
