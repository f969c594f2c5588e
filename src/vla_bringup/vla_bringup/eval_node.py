"""`vla eval`: drives seeded episodes through the policy graph and collects what happened.

Per episode: disable the controller (it stops commanding), reset the scene, enable it again (it
restarts from the measured position with nothing scheduled), then send the instruction as a
`vla/run_instruction` goal and wait for its result (success, or timeout). Chunks, the
simulator's and the controller's diagnostics are recorded on the way.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from sensor_msgs.msg import Image
from sensor_msgs.msg import JointState
from std_srvs.srv import SetBool

from vla_bringup.evaluation import EpisodeResult
from vla_bringup.evaluation import overlay
from vla_bringup.session_node import GraphSession
from vla_bringup.session_node import SessionError
from vla_common.qos import IMAGE_QOS
from vla_common.qos import STATE_QOS
from vla_msgs.action import RunInstruction
from vla_msgs.msg import ActionChunk
from vla_msgs.srv import ResetScene
from vla_perception.image_conversion import image_to_numpy
from vla_perception.image_conversion import to_rgb8

RUN_INSTRUCTION = 'vla/run_instruction'


def _seconds(stamp) -> float:
    return stamp.sec + stamp.nanosec * 1e-9


class EvaluationSession(GraphSession):
    def __init__(
        self,
        arguments: dict,
        camera: str,
        fps: float,
        say: Callable[[str], None],
    ) -> None:
        super().__init__('vla_eval', actions=[(RunInstruction, RUN_INSTRUCTION)])
        self.args = arguments
        self.say = say
        self.fps = fps
        self.results: list[EpisodeResult] = []
        self.inference_ms: list[float] = []
        self.chunk_delay_ms: list[float] = []
        self._chunks = 0
        self._range: tuple[np.ndarray, np.ndarray] | None = None  # joint min, max this run
        output = Path(arguments['output'])
        self._video_path = output / 'eval.mp4' if arguments['video_episodes'] > 0 else None
        self._video = None  # a VideoEncoder, opened at the first frame (its size)
        self._caption: list[str] = []
        self._lock = threading.Lock()
        self.node.create_subscription(ActionChunk, 'vla/action_chunk', self._on_chunk, STATE_QOS)
        self.node.create_subscription(JointState, 'joint_states', self._on_state, STATE_QOS)
        if arguments['video_episodes'] > 0:
            self.node.create_subscription(
                Image, f'camera/{camera}/image_raw', self._on_image, IMAGE_QOS
            )
        self._action = self.actions[RUN_INSTRUCTION]

    def _on_chunk(self, msg: ActionChunk) -> None:
        now = self.node.get_clock().now().nanoseconds * 1e-9
        self._chunks += 1
        self.inference_ms.append(float(msg.inference_ms))
        self.chunk_delay_ms.append((now - _seconds(msg.header.stamp)) * 1e3)

    def _on_state(self, msg: JointState) -> None:
        q = np.asarray(msg.position, dtype=float)
        with self._lock:
            if self._range is None or self._range[0].shape != q.shape:
                self._range = (q, q)
            else:
                self._range = (np.fmin(self._range[0], q), np.fmax(self._range[1], q))

    def _travel(self) -> float:
        with self._lock:
            low, high = self._range if self._range is not None else (np.zeros(1), np.zeros(1))
            return float(np.max(high - low))

    def _on_image(self, msg: Image) -> None:
        with self._lock:
            if self._video_path is None or not self._caption:
                return
            try:
                rgb = to_rgb8(image_to_numpy(msg), msg.encoding)
            except ValueError:
                return
            if self._video is None:
                from vla_teleop.dataset import VideoEncoder

                self._video_path.parent.mkdir(parents=True, exist_ok=True)
                height, width = rgb.shape[:2]
                self._video = VideoEncoder(self._video_path, self.fps, height, width, gop=30)
            if rgb.shape[:2] == (self._video.height, self._video.width):
                self._video.add(overlay(rgb, self._caption))

    def _set_caption(self, lines: list[str]) -> None:
        with self._lock:
            self._caption = lines

    def _episode(self, k: int) -> EpisodeResult:
        a = self.args
        seed = a['seed'] + k
        self.call(SetBool, 'controller/enable', SetBool.Request(data=False))
        reset = self.call(ResetScene, 'sim/reset', ResetScene.Request(seed=seed))
        if not reset.success:
            raise SessionError(f'sim/reset failed: {reset.message}')
        time.sleep(0.3)  # fresh images and joint states of the new scene reach the policy
        self.call(SetBool, 'controller/enable', SetBool.Request(data=True))
        instruction = reset.instruction
        if k < a['video_episodes']:
            self._set_caption([f'episode {k + 1} (seed {seed})', instruction])
        goal = RunInstruction.Goal(instruction=instruction)
        goal.timeout.sec = int(a['timeout_s'])
        goal.timeout.nanosec = int((a['timeout_s'] % 1) * 1e9)
        if not self._action.wait_for_server(timeout_sec=60.0):
            raise SessionError('the policy node (vla/run_instruction) did not appear in 60 s')
        chunks_before = self._chunks
        with self._lock:
            self._range = None
        handle = self.wait(self._action.send_goal_async(goal), RUN_INSTRUCTION, 10.0)
        if not handle.accepted:
            raise SessionError('the policy node refused the goal')
        result = self.wait(handle.get_result_async(), 'the run', a['timeout_s'] + 30.0).result
        ended = time.monotonic()
        sim = self.diagnostics_after('simulation', ended)
        outcome = EpisodeResult(
            seed=seed,
            instruction=instruction,
            success=bool(result.success),
            wrong_object=sim.get('wrong_object') == 'True',
            time_s=round(float(result.elapsed_s), 2),
            chunks=self._chunks - chunks_before,
            travel_rad=round(self._travel(), 4),
            message=result.message,
        )
        if k < a['video_episodes']:
            verdict = 'SUCCESS' if outcome.success else 'FAILED'
            self._set_caption([f'episode {k + 1} (seed {seed})', instruction, verdict])
            time.sleep(1.0)  # a second of the outcome on the video
            self._set_caption([])
        return outcome

    def run(self) -> int:
        """Every episode; returns an exit code (0: all ran, whatever their success)."""
        a = self.args
        try:
            for k in range(a['episodes']):
                r = self._episode(k)
                self.results.append(r)
                wrong = ', WRONG OBJECT' if r.wrong_object else ''
                done = sum(x.success for x in self.results)
                self.say(
                    f'episode {k + 1}/{a["episodes"]} seed {r.seed} "{r.instruction}": '
                    f'{r.message} after {r.time_s:.1f} s{wrong}  '
                    f'({done}/{len(self.results)} successes)'
                )
            return 0
        except SessionError as exc:
            self.say(f'error: {exc}')
            return 1
        finally:
            self.finish_video()

    def controller_values(self) -> dict[str, str]:
        return self.diagnostics.get('controller', ({}, 0.0))[0]

    def finish_video(self) -> None:
        """Close the video (idempotent): also after a stop that interrupted the episodes."""
        with self._lock:
            video, self._video, self._video_path = self._video, None, None
        if video is not None:
            frames = video.close()
            self.say(f'video: {video.path} ({frames} frames)')
