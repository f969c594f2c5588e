"""The sim node as a real process: commands in, states and images out, reset, bad input."""

import time

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from sensor_msgs.msg import CameraInfo
from sensor_msgs.msg import Image
from sensor_msgs.msg import JointState
from std_msgs.msg import String

from vla_common.qos import IMAGE_QOS
from vla_common.qos import LATCHED_QOS
from vla_common.qos import STATE_QOS
from vla_common.robot_config import load_robot_config
from vla_msgs.srv import ResetScene
from vla_perception.image_conversion import image_to_numpy

pytestmark = pytest.mark.ros


def stamps(messages):
    return np.array([m.header.stamp.sec + m.header.stamp.nanosec * 1e-9 for m in messages])


def sim_values(diagnostics):
    statuses = [s for a in list(diagnostics) for s in a.status if 'simulation' in s.name]
    return {kv.key: kv.value for kv in statuses[-1].values} if statuses else {}


@pytest.fixture
def sim(ros, launch_node):
    states = ros.subscribe(JointState, 'joint_states', STATE_QOS)
    images = ros.subscribe(Image, 'camera/front/image_raw', IMAGE_QOS)
    infos = ros.subscribe(CameraInfo, 'camera/front/camera_info', STATE_QOS)
    diagnostics = ros.subscribe(DiagnosticArray, 'diagnostics', STATE_QOS)
    instructions = ros.subscribe(String, 'vla/instruction', LATCHED_QOS)
    node = launch_node(
        'vla_sim',
        'sim_node',
        name='sim',
        params={'seed': 3, 'camera_fps': 10.0, 'width': 160, 'height': 120},
    )
    ros.wait_for(lambda: len(states) > 50 and len(images) > 2, 30, 'states and images')
    commands = ros.node.create_publisher(JointState, 'joint_command', STATE_QOS)
    ros.wait_for(lambda: commands.get_subscription_count() > 0, 10, 'the command subscription')
    return states, images, infos, diagnostics, instructions, commands, node


def test_states_and_images_arrive_at_their_rates(ros, sim):
    states, images, infos, diagnostics, instructions, _, _ = sim
    start_states, start_images = len(states), len(images)
    time.sleep(2.0)
    state_rate = (len(states) - start_states) / 2.0
    image_rate = (len(images) - start_images) / 2.0
    assert state_rate >= 90, f'{state_rate} joint_states/s'
    assert 8 <= image_rate <= 12, f'{image_rate} images/s'
    assert np.median(np.diff(stamps(list(states)[-100:]))) == pytest.approx(0.01, rel=0.2)
    last = states[-1]
    assert list(last.name) == list(load_robot_config('so101')['joints'])
    image = images[-1]
    assert (image.height, image.width, image.encoding) == (120, 160, 'rgb8')
    assert image_to_numpy(image).std() > 5, 'a rendered scene, not a blank frame'
    assert infos[-1].k[0] > 0
    ros.wait_for(lambda: len(instructions) > 0, 5, 'the latched instruction')
    assert instructions[-1].data.startswith('pick up the ')
    ros.wait_for(lambda: 'real_time_factor' in sim_values(diagnostics), 5, 'diagnostics')
    assert float(sim_values(diagnostics)['real_time_factor']) > 0.8


def test_a_command_moves_the_named_joint(ros, sim):
    states, _, _, _, _, commands, _ = sim
    commands.publish(JointState(name=['shoulder_pan'], position=[0.5]))
    ros.wait_for(lambda: abs(states[-1].position[0] - 0.5) < 0.03, 10, 'shoulder_pan at 0.5')


def test_bad_commands_are_rejected_and_the_robot_holds(ros, sim):
    states, _, _, diagnostics, _, commands, node = sim
    commands.publish(JointState(name=['shoulder_pan'], position=[0.3]))
    ros.wait_for(lambda: abs(states[-1].position[0] - 0.3) < 0.03, 10, 'shoulder_pan at 0.3')
    for bad in (
        JointState(name=['elbow'], position=[0.1]),
        JointState(name=['shoulder_pan'], position=[float('nan')]),
        JointState(name=['shoulder_pan'], position=[9.0]),
    ):
        commands.publish(bad)
    ros.wait_for(
        lambda: sim_values(diagnostics).get('commands_rejected') == '3',
        10,
        'three rejections in diagnostics',
    )
    time.sleep(0.5)
    assert abs(states[-1].position[0] - 0.3) < 0.03, 'holds the last valid target'
    assert 'rejected joint_command' in node.output
    assert node.process.poll() is None


def call_reset(ros, seed, task=''):
    client = ros.node.create_client(ResetScene, 'sim/reset')
    assert client.wait_for_service(timeout_sec=10)
    future = client.call_async(ResetScene.Request(seed=seed, task=task))
    ros.wait_for(future.done, 10, 'sim/reset to answer')
    return future.result()


def test_reset_is_seeded_and_rejects_unknown_tasks(ros, sim):
    _, _, _, diagnostics, instructions, _, _ = sim
    answers = [call_reset(ros, seed) for seed in (11, 12, 11)]
    assert all(a.success for a in answers)
    assert answers[0].instruction == answers[2].instruction
    ros.wait_for(lambda: instructions[-1].data == answers[2].instruction, 5, 'the instruction')
    ros.wait_for(lambda: sim_values(diagnostics).get('seed') == '11', 5, 'the seed in diagnostics')
    bad = call_reset(ros, 1, 'insertion')
    assert not bad.success
    assert "unknown task 'insertion'; available: pick_cube" in bad.message
    negative = call_reset(ros, -1)
    assert not negative.success
    assert 'seed must be >= 0' in negative.message
    assert call_reset(ros, 13).success, 'the sim is still there after bad resets'


@pytest.mark.parametrize(
    ('params', 'message'),
    [
        (
            {'cameras': ['top']},
            "unknown cameras ['top']; the scene has ['front', 'side', 'wrist']",
        ),
        ({'robot': 'ur5'}, "no simulation of robot 'ur5'"),
        ({'robot': 'aloha', 'task': 'pick_cube'}, "unknown task 'pick_cube'; available: transfer"),
        ({'camera_fps': 0.0}, 'camera_fps must be in (0, 120]'),
    ],
)
def test_bad_parameters_exit_with_one_clear_line(launch_node, params, message):
    node = launch_node('vla_sim', 'sim_node', name='sim_bad', params=params)
    node.expect_one_error_line(2, message)


def test_an_expert_run_succeeds_through_ros(ros, launch_node):
    """The expert moves a virtual leader arm; relaying it to joint_command (a one-line
    teleop) must pick the asked cube, judged by the sim on sim/success."""
    from std_msgs.msg import Bool

    success = ros.subscribe(Bool, 'sim/success', STATE_QOS)
    commands = ros.node.create_publisher(JointState, 'joint_command', STATE_QOS)
    ros.node.create_subscription(
        JointState,
        'leader/joint_states',
        lambda leader: commands.publish(JointState(name=leader.name, position=leader.position)),
        STATE_QOS,
    )
    node = launch_node(
        'vla_sim',
        'sim_node',
        name='sim_expert',
        params={
            'seed': 4,
            'expert': True,
            'cameras': ['front'],
            'camera_fps': 5.0,
            'width': 64,
            'height': 48,
        },
    )
    ros.wait_for(lambda: any(m.data for m in list(success)), 30, 'sim/success true')
    assert node.process.poll() is None
