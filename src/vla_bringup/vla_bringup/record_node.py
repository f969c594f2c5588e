"""`vla record`: drives a recording session over ROS while the runner supervises the graph.

For each episode: on real robots (wait_for_key) wait until the person has reset the scene and
pressed Enter; in simulation reset the scene (seed = first_seed + k); start an episode,
record for `episode_s` seconds with a progress line every second, stop it (keeping it, or
only if the task succeeded), and finally stop the graph. Keys end an episode early, discard
it or end the session (vla_bringup.keyboard); without a terminal the session runs on time.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from std_msgs.msg import Bool

from vla_bringup.keyboard import HELP
from vla_bringup.keyboard import Action
from vla_bringup.keyboard import NoKeys
from vla_bringup.keyboard import Phase
from vla_bringup.keyboard import action_for
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
    wait_for_key: bool = False  # before each episode, wait for Enter (the scene is reset)


class RecordingSession(GraphSession):
    def __init__(self, plan: SessionPlan, say: Callable[[str], None], keys=None):
        """`keys`: a keyboard.TerminalKeys (already open) or None for no keyboard."""
        super().__init__('vla_record')
        self.plan = plan
        self.say = say
        self.keys = keys if keys is not None else NoKeys()
        self.saved = 0
        self._success = False
        self.node.create_subscription(Bool, 'sim/success', self._on_success, STATE_QOS)
        # To notice, while waiting for a key, that the graph has stopped (Ctrl-C).
        self._recorder = self.node.create_client(StartEpisode, 'recorder/start_episode')

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

    def _pending(self, phase: Phase) -> Action | None:
        """Keys typed before this phase began: only q counts.

        A double Enter must not start or stop an episode the person has not seen begin.
        """
        actions = [action_for(key, phase) for key in self.keys.drain()]
        return Action.QUIT if Action.QUIT in actions else None

    def _wait_for_start(self, k: int) -> bool:
        """Wait for Enter before episode `k`; False if the person pressed q."""
        if self._pending(Phase.WAITING) is Action.QUIT:
            return False
        self.say(
            f'reset the scene, then press Enter to record episode {k + 1}/{self.plan.episodes} '
            '(q: quit)'
        )
        seen = False
        while True:
            action = action_for(self.keys.get(0.5), Phase.WAITING)
            if action is Action.START:
                return True
            if action is Action.QUIT:
                return False
            ready = self._recorder.service_is_ready()
            if seen and not ready:
                raise SessionError('the recorder has gone (the graph is stopping)')
            seen = seen or ready

    def _record(self, k: int, started: StartEpisode.Response) -> tuple[Action | None, float]:
        """Record until `episode_s` or a key; returns (the key's action or None, seconds)."""
        plan = self.plan
        begin = time.monotonic()
        end, report = begin + plan.episode_s, begin + 1.0
        action = self._pending(Phase.RECORDING)
        while action is None and (now := time.monotonic()) < end:
            action = action_for(self.keys.get(min(report, end) - now), Phase.RECORDING)
            if action is None and time.monotonic() >= min(report, end):
                report += 1.0
                values = self.diagnostics.get('recorder', ({}, 0.0))[0]
                self.say(
                    f'episode {k + 1}/{plan.episodes} ({started.episode_index}) '
                    f'{min(time.monotonic() - begin, plan.episode_s):4.1f}/{plan.episode_s:g} s  '
                    f'frames {values.get("frames", "?")}  '
                    f'repeated {values.get("repeated_frames", "?") or 0}'
                    + (f'  success {self._success}' if plan.sim else '')
                )
        return action, time.monotonic() - begin

    def run(self) -> int:
        """Record every episode; returns an exit code (0: all done, or q)."""
        plan = self.plan
        wait = plan.wait_for_key
        if self.keys.available:
            self.say(f'keys while recording: {HELP[Phase.RECORDING]}')
        else:
            self.say(
                f'no keyboard ({self.keys.reason}): episodes run for episode_s'
                + (', not waiting for Enter between them' if wait else '')
            )
            wait = False
        try:
            for k in range(plan.episodes):
                if wait and not self._wait_for_start(k):
                    self.say('q: ending the session')
                    break
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
                action, seconds = self._record(k, started)
                keep = action is not Action.DISCARD and (plan.keep == 'all' or self._success)
                if action is not None:
                    self.say(f'episode {k + 1}: {action.value} (key) after {seconds:.1f} s')
                stopped = self.call(
                    StopEpisode, 'recorder/stop_episode', StopEpisode.Request(keep=keep)
                )
                if not stopped.success:
                    self.say(f'episode {k + 1}: {stopped.message}')
                else:
                    self.saved += keep
                    self.say(f'episode {k + 1}/{plan.episodes}: "{task}" {stopped.message}')
                if action is Action.QUIT:
                    self.say('q: ending the session')
                    break
            self.say(f'done: {self.saved} of {plan.episodes} episodes saved')
            return 0
        except SessionError as exc:
            self.say(f'error: {exc}')
            return 1
        finally:
            self.close()
