"""The controller node as a real process: chunks and joint states in over DDS, commands out."""

import threading
import time

import numpy as np
import pytest
from builtin_interfaces.msg import Duration
from diagnostic_msgs.msg import DiagnosticArray
from sensor_msgs.msg import JointState
from std_srvs.srv import SetBool
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory

from vla_common.qos import STATE_QOS
from vla_common.robot_config import load_robot_config
from vla_control.limits import JointLimits
from vla_msgs.msg import ActionChunk

pytestmark = pytest.mark.ros

LIMITS = JointLimits.from_robot_config(load_robot_config('so101'))
NAMES = list(LIMITS.names)
RATE = 200.0


class FakeArm:
    """An ideal position servo in the test process: joint_states = the last joint_command.

    States go out at 100 Hz from a thread of their own, so a busy executor cannot starve them.
    """

    def __init__(self, ros, start):
        self.ros = ros
        self.position = np.array(start, float)
        self.publishing = True
        self.lock = threading.Lock()
        self.commands = []
        ros.node.create_subscription(JointState, 'joint_command', self._follow, STATE_QOS)
        self._pub = ros.node.create_publisher(JointState, 'joint_states', STATE_QOS)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._publish_states, daemon=True)
        self._thread.start()

    def _follow(self, msg):
        with self.lock:
            self.commands.append(msg)
            self.position = np.array([msg.position[msg.name.index(n)] for n in NAMES])

    def _publish_states(self):
        while not self._stop.wait(0.01):
            if self.publishing and self.ros.context.ok():
                with self.lock:
                    msg = JointState(name=NAMES, position=self.position.tolist())
                msg.header.stamp = self.ros.node.get_clock().now().to_msg()
                self._pub.publish(msg)

    def close(self):
        self._stop.set()
        self._thread.join(2.0)


def make_chunk(ros, sequence, rows, step=0.05, stamp_offset=0.0, names=NAMES):
    rows = np.asarray(rows, float)
    msg = ActionChunk(sequence=sequence, joint_names=list(names), horizon=len(rows))
    msg.positions = rows.ravel().tolist()
    msg.step = Duration(sec=0, nanosec=int(step * 1e9))
    stamp = ros.node.get_clock().now().nanoseconds * 1e-9 + stamp_offset
    msg.header.stamp.sec, msg.header.stamp.nanosec = int(stamp), int((stamp % 1) * 1e9)
    msg.inference_ms = 10.0
    return msg


def diagnostic_values(diagnostics):
    """The latest controller status and its values (None, {} before the first)."""
    statuses = [s for a in list(diagnostics) for s in a.status if 'controller' in s.name]
    if not statuses:
        return None, {}
    return statuses[-1], {kv.key: kv.value for kv in statuses[-1].values}


def status_message(diagnostics):
    status = diagnostic_values(diagnostics)[0]
    return '' if status is None else status.message


@pytest.fixture
def controller(ros, launch_node):
    arm = FakeArm(ros, np.zeros(len(NAMES)))
    diagnostics = ros.subscribe(DiagnosticArray, 'diagnostics', STATE_QOS)
    node = launch_node(
        'vla_control',
        'controller_node',
        name='controller',
        params={'robot': 'so101', 'rate_hz': RATE, 'publish_trajectory': True},
    )
    chunks = ros.node.create_publisher(ActionChunk, 'vla/action_chunk', STATE_QOS)
    ros.wait_for(lambda: len(arm.commands) > 20, 20, 'commands from the controller')
    ros.wait_for(lambda: chunks.get_subscription_count() > 0, 10, 'the chunk subscription')
    yield arm, chunks, diagnostics, node
    arm.close()


def check_safe(commands):
    positions = np.array([c.position for c in commands])
    assert np.all(positions >= LIMITS.lower - 1e-9)
    assert np.all(positions <= LIMITS.upper + 1e-9)
    steps = np.abs(np.diff(positions, axis=0))
    # Each tick moves a joint at most velocity / RATE. Between two received commands lie as
    # many ticks as their stamps are periods apart (a busy test process may miss some).
    stamps = np.array([c.header.stamp.sec + c.header.stamp.nanosec * 1e-9 for c in commands])
    ticks = np.maximum(np.round(np.diff(stamps) * RATE), 1.0)[:, None]
    assert np.all(steps <= ticks * LIMITS.velocity / RATE + 1e-9)


def test_executes_a_chunk_at_the_output_rate_within_limits(ros, controller):
    arm, chunks, _, _ = controller
    target = np.zeros(len(NAMES))
    target[0], target[5] = 0.5, 1.0  # shoulder_pan and gripper
    rows = np.linspace(np.zeros(len(NAMES)), target, 20)
    trajectories = ros.subscribe(
        JointTrajectory, 'joint_trajectory_controller/joint_trajectory', STATE_QOS
    )
    start = len(arm.commands)
    chunks.publish(make_chunk(ros, 1, rows))
    ros.wait_for(lambda: np.allclose(arm.position, target, atol=1e-3), 10, 'the chunk target')
    commands = list(arm.commands)[start:]
    check_safe(commands)
    stamps = np.array([c.header.stamp.sec + c.header.stamp.nanosec * 1e-9 for c in commands])
    assert np.median(np.diff(stamps)) == pytest.approx(1 / RATE, rel=0.2)
    ros.wait_for(lambda: len(trajectories) > 0, 5, 'a JointTrajectory for ros2_control')
    points = np.array([p.positions for p in trajectories[0].points])
    assert trajectories[0].joint_names == NAMES
    assert np.allclose(points[-1], target, atol=0.05)


def test_bad_chunks_are_rejected_and_the_arm_holds(ros, controller):
    arm, chunks, diagnostics, node = controller
    good = np.full((10, len(NAMES)), 0.2)
    chunks.publish(make_chunk(ros, 10, good))
    ros.wait_for(lambda: np.allclose(arm.position, 0.2, atol=1e-3), 10, 'the first target')
    nan_rows = good.copy()
    nan_rows[3, 2] = np.nan
    bad = [
        make_chunk(ros, 11, nan_rows),
        make_chunk(ros, 12, good[:, :5], names=NAMES[:5]),  # missing the gripper
        make_chunk(ros, 13, good, names=[*NAMES[:5], 'elbow']),  # unknown joint
        make_chunk(ros, 14, good, step=0.0),
        make_chunk(ros, 15, good, stamp_offset=30.0),  # far in the future
        make_chunk(ros, 9, good),  # out of order
    ]
    wrong_size = make_chunk(ros, 16, good)
    wrong_size.horizon = 11
    bad.append(wrong_size)
    for msg in bad:
        msg.positions = [0.9 if np.isfinite(v) else v for v in msg.positions]
        chunks.publish(msg)
    ros.wait_for(
        lambda: diagnostic_values(diagnostics)[1].get('chunks_rejected') == '7',
        10,
        'seven rejections in diagnostics',
    )
    status, values = diagnostic_values(diagnostics)
    assert status.level == b'\x01', 'a rejection is a WARN'
    assert values['chunks_accepted'] == '1'
    time.sleep(0.3)
    assert np.allclose(arm.position, 0.2, atol=1e-3), 'no bad chunk moved the arm'
    assert node.process.poll() is None, 'the controller is still running'
    log = node.output
    for reason in (
        'NaN or inf',
        "missing ['gripper']",
        "unknown ['elbow']",
        'step must be > 0',
        'in the future',
        'not after the last accepted 10',
        'expected horizon*joints',
    ):
        assert reason in log, reason


def test_stale_joint_states_stop_the_commands(ros, controller):
    arm, _, diagnostics, _ = controller
    arm.publishing = False
    time.sleep(0.5)
    count = len(arm.commands)
    time.sleep(0.5)
    assert len(arm.commands) == count, 'no commands without fresh joint_states'
    ros.wait_for(lambda: 'not commanding' in status_message(diagnostics), 5, 'an ERROR status')
    assert diagnostic_values(diagnostics)[0].level == b'\x02'
    arm.publishing = True
    ros.wait_for(lambda: len(arm.commands) > count + 10, 5, 'commands again')


def call(ros, srv_type, name, request):
    client = ros.node.create_client(srv_type, name)
    assert client.wait_for_service(timeout_sec=10)
    future = client.call_async(request)
    ros.wait_for(future.done, 10, f'{name} to answer')
    return future.result()


def test_estop_holds_still_until_enabled(ros, controller):
    arm, chunks, diagnostics, _ = controller
    far = np.zeros(len(NAMES))
    far[0] = 1.5
    chunks.publish(make_chunk(ros, 20, np.linspace(np.zeros(len(NAMES)), far, 40)))
    ros.wait_for(lambda: arm.position[0] > 0.3, 10, 'motion')
    assert call(ros, Trigger, 'controller/estop', Trigger.Request()).success
    time.sleep(0.5)
    held = arm.position.copy()
    assert held[0] < 1.4
    time.sleep(0.3)
    np.testing.assert_allclose(arm.position, held, atol=1e-9)
    ros.wait_for(lambda: 'estop latched' in status_message(diagnostics), 5, 'estop in diagnostics')
    assert call(ros, SetBool, 'controller/enable', SetBool.Request(data=True)).success
    chunks.publish(make_chunk(ros, 21, np.tile(far, (20, 1))))
    ros.wait_for(lambda: abs(arm.position[0] - 1.5) < 1e-3, 10, 'motion after enable')


@pytest.mark.parametrize(
    ('params', 'message'),
    [
        ({'merge': 'blend'}, "unknown merge 'blend'; allowed: replace, crossfade"),
        ({'robot': 'ur5'}, "unknown robot 'ur5'"),
        ({'rate_hz': 0.0}, 'rate_hz must be in [1, 2000]'),
    ],
)
def test_bad_parameters_exit_with_one_clear_line(launch_node, params, message):
    node = launch_node('vla_control', 'controller_node', name='controller_bad', params=params)
    node.expect_one_error_line(2, message)
