"""The driver node as a real process on emulated servo buses (ptys in this test process)."""

from pathlib import Path

import pytest
import yaml
from diagnostic_msgs.msg import DiagnosticArray
from sensor_msgs.msg import JointState

from vla_common.qos import STATE_QOS
from vla_common.robot_config import load_robot_config
from vla_control.servo.calibration import ArmCalibration
from vla_control.servo.emulator import ServoBusEmulator
from vla_control.servo.models import STS3215
from vla_control.servo.models import XM430_W350

pytestmark = pytest.mark.ros

EXAMPLES = Path(__file__).resolve().parents[3] / 'config' / 'calibration'
SO101_EXAMPLE = EXAMPLES / 'so101_follower.example.yaml'
SO101 = ArmCalibration.load(SO101_EXAMPLE, load_robot_config('so101'))
JOINTS = {j.name: j for j in SO101.joints}


def latest_status(diagnostics):
    """The driver's latest status and its values (None, {} before the first)."""
    statuses = [s for a in list(diagnostics) for s in a.status if 'servo bus' in s.name]
    if not statuses:
        return None, {}
    return statuses[-1], {kv.key: kv.value for kv in statuses[-1].values}


def latest_positions(states):
    msg = states[-1]
    return dict(zip(msg.name, msg.position, strict=True))


@pytest.fixture
def follower(ros, launch_node):
    with ServoBusEmulator({j.id: STS3215 for j in SO101.joints}, speed=20000.0) as emulator:
        states = ros.subscribe(JointState, 'joint_states', STATE_QOS)
        diagnostics = ros.subscribe(DiagnosticArray, 'diagnostics', STATE_QOS)
        node = launch_node(
            'vla_control',
            'driver_node',
            params={
                'robot': 'so101',
                'ports': [emulator.port],
                'calibrations': [str(SO101_EXAMPLE)],
                'max_consecutive_failures': 5,
            },
        )
        ros.wait_for(lambda: len(states) > 10, 20, f'joint_states from the driver:\n{node.output}')
        commands = ros.node.create_publisher(JointState, 'joint_command', STATE_QOS)
        ros.wait_for(lambda: commands.get_subscription_count() > 0, 10, 'the command subscription')
        yield emulator, node, states, diagnostics, commands
        node.stop()  # while its bus is still there


def test_joint_commands_move_the_servos_and_bad_ones_are_rejected(ros, follower):
    emulator, node, states, diagnostics, commands = follower
    assert list(states[-1].name) == list(SO101.names)
    assert all(emulator.torque(j.id) for j in SO101.joints)
    pan, gripper = JOINTS['shoulder_pan'], JOINTS['gripper']
    commands.publish(JointState(name=['shoulder_pan', 'gripper'], position=[0.3, 1.0]))
    ros.wait_for(
        lambda: emulator.position(pan.id) == pan.to_ticks(0.3)
        and emulator.position(gripper.id) == gripper.to_ticks(1.0),
        10,
        'the servos at the commanded positions',
    )
    ros.wait_for(
        lambda: abs(latest_positions(states)['shoulder_pan'] - 0.3) < 1e-3,
        5,
        'joint_states at the new position',
    )
    bad = [
        (['shoulder_pan'], [float('nan')], 'NaN or inf'),
        (['shoulder_pan', 'elbow'], [0.1, 0.1], "unknown joints ['elbow']"),
        (['shoulder_pan'], [2.5], 'outside the joint limits'),
    ]
    for count, (names, positions, reason) in enumerate(bad, 1):
        commands.publish(JointState(name=names, position=positions))
        ros.wait_for(
            lambda count=count: latest_status(diagnostics)[1].get('commands_rejected')
            == str(count),
            5,
            f'rejection {count} in diagnostics',
        )
        assert reason in latest_status(diagnostics)[1]['last_rejection']
    assert 'rejected joint_command: NaN or inf' in node.output
    assert latest_status(diagnostics)[1]['commands_accepted'] == '1'
    assert emulator.goal(pan.id) == pan.to_ticks(0.3), 'the last valid target holds'
    assert node.stop() == 0
    assert not any(emulator.torque(j.id) for j in SO101.joints), 'torque off on exit'


def test_faults_are_counted_and_a_dead_bus_is_an_error_until_it_recovers(ros, follower):
    emulator, node, states, diagnostics, _ = follower
    emulator.faults.drop, emulator.faults.corrupt = 0.2, 0.1
    start = len(states)
    ros.wait_for(lambda: len(states) > start + 100, 10, '100 more joint_states despite faults')
    ros.wait_for(
        lambda: int(latest_status(diagnostics)[1].get('failed_attempts', 0)) > 10,
        5,
        'failed attempts in diagnostics',
    )
    assert latest_status(diagnostics)[0].level != b'\x02'
    emulator.faults.drop = 1.0
    ros.wait_for(
        lambda: 'bus fault' in latest_status(diagnostics)[0].message,
        10,
        'an ERROR for the dead bus',
    )
    status, values = latest_status(diagnostics)
    assert status.level == b'\x02'
    assert 'holding (torque on, no new goals)' in status.message
    assert float(values['last_good_age_s']) > 0.1
    assert node.process.poll() is None, 'the node keeps running'
    emulator.faults.drop, emulator.faults.corrupt = 0.0, 0.0
    ros.wait_for(
        lambda: latest_status(diagnostics)[1].get('recoveries') == '1'
        and latest_status(diagnostics)[0].level != b'\x02',
        10,
        'the bus back to normal',
    )
    start = len(states)
    ros.wait_for(lambda: len(states) > start + 20, 5, 'joint_states again')


def test_an_aloha_leader_publishes_both_arms_with_torque_off(ros, launch_node, tmp_path):
    aloha = load_robot_config('aloha')
    left = ArmCalibration.load(EXAMPLES / 'aloha_left_follower.example.yaml', aloha).to_dict()
    files = []
    for side in ('left', 'right'):
        joints = {n.replace('left_', f'{side}_'): v for n, v in left['joints'].items()}
        files.append(tmp_path / f'{side}.yaml')
        files[-1].write_text(yaml.safe_dump({**left, 'arm': 'leader', 'joints': joints}))
    calibrations = [ArmCalibration.load(path, aloha) for path in files]
    servos = {j.id: XM430_W350 for j in calibrations[0].joints}
    with ServoBusEmulator(servos) as left_bus, ServoBusEmulator(servos) as right_bus:
        states = ros.subscribe(JointState, 'leader/joint_states', STATE_QOS)
        node = launch_node(
            'vla_control',
            'driver_node',
            params={
                'robot': 'aloha',
                'mode': 'leader',
                'ports': [left_bus.port, right_bus.port],
                'calibrations': [str(path) for path in files],
            },
        )
        ros.wait_for(lambda: len(states) > 5, 20, f'leader/joint_states:\n{node.output}')
        assert list(states[-1].name) == list(aloha['joints'])
        assert not any(bus.torque(i) for bus in (left_bus, right_bus) for i in servos)
        # A person moves both leader arms.
        for bus, calibration in zip((left_bus, right_bus), calibrations, strict=True):
            for k, joint in enumerate(calibration.joints):
                bus.set_position(joint.id, joint.range_min + 100 + 10 * k)
        expected = {
            joint.name: joint.to_value(joint.range_min + 100 + 10 * k)
            for calibration in calibrations
            for k, joint in enumerate(calibration.joints)
        }
        ros.wait_for(
            lambda: latest_positions(states) == pytest.approx(expected),
            5,
            'leader/joint_states following the arms',
        )
        node.stop()
