"""The policy node in its own process, fed by camera and joint-state publishers over DDS."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.action import ActionClient
from sensor_msgs.msg import Image
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool
from std_msgs.msg import String

from vla_common.qos import IMAGE_QOS
from vla_common.qos import LATCHED_QOS
from vla_common.qos import STATE_QOS
from vla_common.robot_config import load_robot_config
from vla_msgs.action import RunInstruction
from vla_msgs.msg import ActionChunk

pytestmark = pytest.mark.ros

ROBOT = load_robot_config('so101')
JOINTS = list(ROBOT['joints'])
SHAPE = (120, 160)  # the camera images of the `checkpoint` fixture (conftest.py)


class Feeder:
    """Publishes camera images and joint states at 20 Hz from the test's node."""

    def __init__(self, ros, shape=SHAPE, encoding='rgb8'):
        self.ros, self.shape, self.encoding = ros, shape, encoding
        self.state = np.linspace(-0.3, 0.3, len(JOINTS))
        self.state_stamps: list[float] = []
        node = ros.node
        self.images = {
            c: node.create_publisher(Image, f'camera/{c}/image_raw', IMAGE_QOS)
            for c in ROBOT['cameras']
        }
        self.joints = node.create_publisher(JointState, 'joint_states', STATE_QOS)
        self.instruction = node.create_publisher(String, 'vla/instruction', LATCHED_QOS)
        self.timer = node.create_timer(0.05, self.publish)

    def publish(self) -> None:
        now = self.ros.node.get_clock().now()
        channels = 3 if self.encoding in ('rgb8', 'bgr8') else 1
        for pub in self.images.values():
            img = Image(height=self.shape[0], width=self.shape[1], encoding=self.encoding)
            img.step = self.shape[1] * channels
            img.data = bytes(np.full(self.shape[0] * img.step, 90, np.uint8))
            img.header.stamp = now.to_msg()
            pub.publish(img)
        state = JointState(name=JOINTS, position=self.state.tolist())
        state.header.stamp = now.to_msg()
        self.state_stamps.append(now.nanoseconds * 1e-9)
        self.joints.publish(state)

    def say(self, text: str) -> None:
        self.instruction.publish(String(data=text))


def policy(launch_node, checkpoint, **params):
    return launch_node(
        'vla_policy',
        'policy_node',
        name='policy',
        params={'checkpoint': str(checkpoint), 'replan_period_s': 0.2, 'threads': 1, **params},
    )


def latest_policy_status(diagnostics):
    for array in reversed(list(diagnostics)):
        for status in array.status:
            if status.name.startswith('policy'):
                return status
    return None


def wait_for_status(ros, diagnostics, text, level=b'\x02'):
    def has_status():
        status = latest_policy_status(diagnostics)
        return status is not None and status.level == level and text in status.message

    ros.wait_for(has_status, 30, f'a diagnostic (level {level}) containing {text!r}')


def wait_for_error(ros, diagnostics, text):
    wait_for_status(ros, diagnostics, text, b'\x02')


def test_the_policy_publishes_valid_chunks_from_camera_and_state_topics(
    ros, launch_node, checkpoint
):
    chunks = ros.subscribe(ActionChunk, 'vla/action_chunk', STATE_QOS)
    feeder = Feeder(ros)
    node = policy(launch_node, checkpoint)
    feeder.say('pick up the red cube')
    ros.wait_for(lambda: len(chunks) >= 3, 60, f'three chunks:\n{node.output}')
    step = 1.0 / ROBOT['fps']
    for msg in list(chunks)[:3]:
        assert list(msg.joint_names) == JOINTS
        assert msg.horizon == 16
        assert len(msg.positions) == 16 * len(JOINTS)
        assert all(math.isfinite(p) for p in msg.positions)
        assert msg.step.sec == 0
        assert abs(msg.step.nanosec * 1e-9 - step) < 1e-6
        assert msg.inference_ms > 0
        # Stamped with the capture time of a joint state it was computed from.
        stamp = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
        assert min(abs(stamp - s) for s in feeder.state_stamps) < 1e-6
    sequences = [m.sequence for m in chunks]
    assert sequences == sorted(set(sequences))


def test_bad_inputs_publish_no_chunk_and_say_why(ros, launch_node, checkpoint):
    chunks = ros.subscribe(ActionChunk, 'vla/action_chunk', STATE_QOS)
    diagnostics = ros.subscribe(DiagnosticArray, 'diagnostics', STATE_QOS)
    feeder = Feeder(ros, shape=(96, 128))  # not the size the checkpoint was trained on
    node = policy(launch_node, checkpoint, max_image_age_s=5.0)
    wait_for_status(ros, diagnostics, 'idle', b'\x00')  # no instruction: not an error
    feeder.say('pick up the red cube')
    wait_for_error(ros, diagnostics, 'trained on uint8 120x160x3')
    feeder.shape = SHAPE
    feeder.state[2] = float('nan')
    wait_for_error(ros, diagnostics, 'not finite for elbow_flex')
    assert not chunks, 'a chunk was published from bad inputs'
    feeder.state[2] = 0.0
    ros.wait_for(lambda: len(chunks) > 0, 30, 'a chunk once the inputs are good')
    feeder.encoding = 'mono8'
    wait_for_error(ros, diagnostics, "encoding 'mono8'")
    # No chunk from the colour images that came before, though they are not stale yet.
    time.sleep(0.5)  # an inference already running may still publish
    count = len(chunks)
    time.sleep(1.5)
    assert len(chunks) == count, 'chunks went on while the cameras sent mono8'
    wait_for_error(ros, diagnostics, "encoding 'mono8'")  # still said, not cleared
    feeder.encoding = 'rgb8'
    ros.wait_for(lambda: len(chunks) > count, 30, 'chunks again once the images are colour')
    assert 'Traceback' not in node.output


def test_stale_images_stop_the_chunks(ros, launch_node, checkpoint):
    chunks = ros.subscribe(ActionChunk, 'vla/action_chunk', STATE_QOS)
    diagnostics = ros.subscribe(DiagnosticArray, 'diagnostics', STATE_QOS)
    feeder = Feeder(ros)
    policy(launch_node, checkpoint, max_image_age_s=0.3)
    feeder.say('pick up the red cube')
    ros.wait_for(lambda: len(chunks) > 0, 60, 'a first chunk')
    for pub in feeder.images.values():
        ros.node.destroy_publisher(pub)
    feeder.images = {}
    wait_for_error(ros, diagnostics, 'image is')
    count = len(chunks)
    time.sleep(1.0)
    assert len(chunks) == count


def test_run_instruction_runs_until_success_or_timeout(ros, launch_node, checkpoint):
    feeder = Feeder(ros)
    success = ros.node.create_publisher(Bool, 'sim/success', STATE_QOS)
    policy(launch_node, checkpoint)
    client = ActionClient(ros.node, RunInstruction, 'vla/run_instruction')
    assert client.wait_for_server(timeout_sec=30)

    def run(instruction, timeout_s, feedback=None):
        goal = RunInstruction.Goal(instruction=instruction)
        goal.timeout.sec = timeout_s
        sent = client.send_goal_async(goal, feedback_callback=feedback)
        ros.wait_for(sent.done, 10, 'the goal to be accepted')
        result = sent.result().get_result_async()
        return result

    feedbacks = []
    result = run('pick up the red cube', 30, feedbacks.append)
    ros.wait_for(lambda: any(f.feedback.chunks_executed >= 2 for f in feedbacks), 30, 'chunks')
    success.publish(Bool(data=True))
    ros.wait_for(result.done, 10, 'the success result')
    assert result.result().result.success
    assert result.result().result.message == 'success'
    success.publish(Bool(data=False))

    result = run('pick up the blue cube', 1)
    ros.wait_for(result.done, 10, 'the timeout result')
    assert not result.result().result.success
    assert result.result().result.message == 'timeout'
    assert 0.9 < result.result().result.elapsed_s < 3.0
    del feeder


def test_a_checkpoint_for_another_robot_stops_the_node_with_one_line(launch_node, checkpoint):
    node = launch_node(
        'vla_policy', 'policy_node', params={'checkpoint': str(checkpoint), 'robot': 'aloha'}
    )
    node.expect_one_error_line(2, 'does not fit aloha')
