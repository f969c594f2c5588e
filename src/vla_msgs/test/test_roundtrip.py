"""Every vla_msgs interface crosses a process boundary over DDS and comes back intact."""

import sys
from pathlib import Path

import pytest
from builtin_interfaces.msg import Duration
from rclpy.action import ActionClient

from vla_common.qos import STATE_QOS
from vla_msgs.action import RunInstruction
from vla_msgs.msg import ActionChunk
from vla_msgs.srv import ResetScene
from vla_msgs.srv import StartEpisode
from vla_msgs.srv import StopEpisode

pytestmark = pytest.mark.ros


@pytest.fixture
def echo_server(run_command):
    server = run_command([sys.executable, str(Path(__file__).with_name('echo_server.py'))], 'echo')
    yield server
    assert server.stop() == 0, server.output


def call(ros, srv_type, name, request):
    client = ros.node.create_client(srv_type, name)
    assert client.wait_for_service(timeout_sec=15), f'{name} not available'
    future = client.call_async(request)
    ros.wait_for(future.done, timeout=10, what=f'a response from {name}')
    return future.result()


def test_action_chunk_round_trip(ros, echo_server):
    received = ros.subscribe(ActionChunk, 'chunk_out', STATE_QOS)
    publisher = ros.node.create_publisher(ActionChunk, 'chunk_in', STATE_QOS)
    chunk = ActionChunk(
        sequence=2**40 + 7,
        joint_names=['a', 'b'],
        horizon=3,
        positions=[0.5 * i - 1.0 for i in range(6)],
        inference_ms=12.5,
    )
    chunk.header.stamp.sec, chunk.header.stamp.nanosec = 1700000000, 123456789
    chunk.step = Duration(sec=0, nanosec=33_333_333)
    ros.wait_for(lambda: publisher.get_subscription_count() > 0, 15, 'the echo subscriber')
    ros.wait_for(lambda: ros.node.count_publishers('chunk_out') > 0, 15, 'the echo publisher')

    def published_and_back():
        publisher.publish(chunk)
        return len(received) > 0

    ros.wait_for(published_and_back, timeout=15, what='the chunk to come back')
    assert received[0] == chunk


def test_recorder_and_sim_services_round_trip(ros, echo_server):
    started = call(
        ros,
        StartEpisode,
        'recorder/start_episode',
        StartEpisode.Request(instruction='pick up the red cube'),
    )
    assert (started.success, started.episode_index) == (True, 20)
    assert started.message == 'PICK UP THE RED CUBE'
    stopped = call(ros, StopEpisode, 'recorder/stop_episode', StopEpisode.Request(keep=False))
    assert (stopped.success, stopped.num_frames, stopped.message) == (False, 42, 'discarded')
    reset = call(ros, ResetScene, 'sim/reset', ResetScene.Request(seed=-3, task='pick_cube'))
    assert reset.instruction == 'pick_cube seed -3'


def test_run_instruction_action_round_trip(ros, echo_server):
    client = ActionClient(ros.node, RunInstruction, 'vla/run_instruction')
    assert client.wait_for_server(timeout_sec=15)
    feedback = []
    goal = RunInstruction.Goal(instruction='pick up the blue cube', timeout=Duration(sec=9))
    sent = client.send_goal_async(goal, feedback_callback=lambda f: feedback.append(f.feedback))
    ros.wait_for(sent.done, 10, 'goal acceptance')
    result = sent.result().get_result_async()
    ros.wait_for(result.done, 10, 'the action result')
    assert result.result().result.success
    assert result.result().result.elapsed_s == 9.0
    assert [f.chunks_executed for f in feedback] == [1, 2]
