"""Teleoperation over emulated servo buses that drop and corrupt replies, every node a process.

leader bus (pty, in this process) -> driver_node mode:=leader -> leader/joint_states
  -> teleop_node -> joint_command -> driver_node mode:=follower -> follower bus (pty)

The test moves the leader's servos as a hand would and checks that the follower's servos get
the matching goals and reach them, while both buses lose 20% and corrupt 10% of their replies
(from the moment teleop runs until the arms are at rest again).

Start-up and shutdown run on clean buses: this test is about teleoperation under faults;
the driver's own start-up under faults (torque retried servo by servo) is tested with it.
"""

import time

import pytest
from diagnostic_msgs.msg import DiagnosticArray
from sensor_msgs.msg import JointState

from vla_common.qos import STATE_QOS
from vla_common.robot_config import load_robot_config
from vla_control.servo.calibrate import CalibrationRecorder
from vla_control.servo.calibrate import servo_layout
from vla_control.servo.calibration import ArmCalibration
from vla_control.servo.emulator import ServoBusEmulator
from vla_control.servo.models import STS3215

pytestmark = pytest.mark.ros

SO101 = load_robot_config('so101')
LAYOUT = servo_layout('so101')
# Two arms as a person calibrates them: per joint (zero pose, one stop, the other stop), in
# ticks. The arms differ (horns mounted a little differently): the follower gets the leader's
# joint values, not its ticks.
LEADER_ARM = {
    'shoulder_pan': (2010, 800, 3300),
    'shoulder_lift': (2100, 880, 3250),
    'elbow_flex': (1990, 940, 3180),
    'wrist_flex': (2075, 980, 3150),
    'wrist_roll': (2030, 260, 3900),
    'gripper': (2300, 1900, 3350),  # closed at 1900
}
FOLLOWER_ARM = {
    'shoulder_pan': (2047, 820, 3270),
    'shoulder_lift': (2050, 900, 3200),
    'elbow_flex': (2041, 960, 3140),
    'wrist_flex': (2060, 990, 3120),
    'wrist_roll': (2048, 280, 3870),
    'gripper': (2400, 1930, 3300),  # closed at 1930
}
# Where the hand takes the leader (joint values: rad; gripper rad from closed).
POSES = [
    {
        'shoulder_pan': 0.4,
        'shoulder_lift': -0.3,
        'elbow_flex': 0.5,
        'wrist_flex': -0.4,
        'wrist_roll': 0.8,
        'gripper': 0.9,
    },
    {
        'shoulder_pan': -0.5,
        'shoulder_lift': 0.35,
        'elbow_flex': -0.2,
        'wrist_flex': 0.3,
        'wrist_roll': -0.6,
        'gripper': 0.1,
    },
]
DROP, CORRUPT = 0.2, 0.1


def write_calibration(path, arm: str, measured: dict) -> ArmCalibration:
    """The calibration routine's bookkeeping fed with what a person did; saved as it saves."""
    grippers = [name for name in LAYOUT if SO101['joints'][name].get('gripper')]
    recorder = CalibrationRecorder(LAYOUT, grippers)
    zero_pose = {LAYOUT[name]: zero for name, (zero, _, _) in measured.items()}
    recorder.record_zero(zero_pose)
    for name, (zero, low, high) in measured.items():  # the sweep: slowly, stop to stop
        for ticks in (*range(zero, low, -300), *range(low, high, 300), high, zero):
            recorder.observe({**zero_pose, LAYOUT[name]: ticks})
    recorder.record_closed(
        {LAYOUT[name]: measured[name][1 if name in grippers else 0] for name in LAYOUT}
    )
    calibration = ArmCalibration.from_dict(recorder.to_dict('so101', arm, {}), SO101)
    calibration.save(path)
    return ArmCalibration.load(path, SO101)


def servo_status(diagnostics, node: str):
    """The latest status of one driver node and its values (None, {} before the first)."""
    statuses = [s for a in list(diagnostics) for s in a.status if s.name == f'{node}: servo bus']
    if not statuses:
        return None, {}
    return statuses[-1], {kv.key: kv.value for kv in statuses[-1].values}


def driver_params(mode, port, calibration_path):
    return {
        'robot': 'so101',
        'mode': mode,
        'ports': [port],
        'calibrations': [str(calibration_path)],
    }


def test_the_follower_follows_the_leader_through_bus_faults(ros, launch_node, tmp_path):
    leader = write_calibration(tmp_path / 'leader.yaml', 'leader', LEADER_ARM)
    follower = write_calibration(tmp_path / 'follower.yaml', 'follower', FOLLOWER_ARM)
    assert (leader.arm, follower.arm) == ('leader', 'follower')
    ids = {j.id: STS3215 for j in follower.joints}
    with (
        ServoBusEmulator(ids, seed=1) as leader_bus,
        ServoBusEmulator(ids, speed=4000.0, seed=2) as follower_bus,
    ):
        commands = ros.subscribe(JointState, 'joint_command', STATE_QOS)
        states = ros.subscribe(JointState, 'joint_states', STATE_QOS)
        diagnostics = ros.subscribe(DiagnosticArray, 'diagnostics', STATE_QOS)
        nodes = [
            launch_node(
                'vla_control',
                'driver_node',
                name='leader_driver',
                params=driver_params('leader', leader_bus.port, tmp_path / 'leader.yaml'),
            ),
            launch_node(
                'vla_control',
                'driver_node',
                name='follower_driver',
                params=driver_params('follower', follower_bus.port, tmp_path / 'follower.yaml'),
            ),
            launch_node('vla_teleop', 'teleop_node', name='teleop', params={'robot': 'so101'}),
        ]

        def outputs():
            return '\n'.join(f'--- {n.log_path.name}\n{n.output}' for n in nodes)

        try:
            ros.wait_for(lambda: len(commands) > 10, 30, 'teleop joint_command')
        except pytest.fail.Exception:
            pytest.fail(f'no teleop joint_command:\n{outputs()}')
        assert not any(leader_bus.torque(j.id) for j in leader.joints), 'the leader is limp'
        assert all(follower_bus.torque(j.id) for j in follower.joints), 'the follower holds'
        for bus in (leader_bus, follower_bus):
            bus.faults.drop, bus.faults.corrupt = DROP, CORRUPT
        faults_from = len(diagnostics)

        for pose in POSES:
            target = {j.id: j.to_ticks(pose[j.name]) for j in leader.joints}
            start = {i: leader_bus.position(i) for i in target}
            steps = 40  # a hand: 0.8 s from pose to pose, smooth
            for k in range(1, steps + 1):
                s = k / steps
                s = s * s * (3 - 2 * s)
                for i, end in target.items():
                    leader_bus.set_position(i, round(start[i] + s * (end - start[i])))
                time.sleep(0.02)
            # The follower's goal is the leader's joint value in the follower's own ticks.
            expected = {
                f.id: f.to_ticks(lj.to_value(target[lj.id]))
                for lj, f in zip(leader.joints, follower.joints, strict=True)
            }
            try:
                ros.wait_for(
                    lambda expected=expected: all(
                        follower_bus.goal(i) == ticks
                        and abs(follower_bus.position(i) - ticks) <= 1
                        for i, ticks in expected.items()
                    ),
                    15,
                    'the follower at the pose',
                )
            except pytest.fail.Exception:
                goals = {i: follower_bus.goal(i) for i in expected}
                pytest.fail(f'follower goals {goals}, expected {expected}:\n{outputs()}')
            ros.wait_for(
                lambda pose=pose: states
                and all(
                    abs(p - pose[n]) < 3e-3
                    for n, p in zip(states[-1].name, states[-1].position, strict=True)
                ),
                5,
                'the follower joint_states at the pose',
            )

        for bus in (leader_bus, follower_bus):
            assert bus.stats.dropped > 10, bus.stats
            assert bus.stats.corrupted > 5, bus.stats
        for name in ('leader_driver', 'follower_driver'):
            ros.wait_for(
                lambda name=name: int(servo_status(diagnostics, name)[1].get('failed_reads', 0))
                > 0,
                5,
                f'{name} diagnostics counting the failed reads',
            )
            status, values = servo_status(diagnostics, name)
            assert status.level != b'\x02', f'{name}: {status.message}'  # no bus fault
            assert int(values['failed_attempts']) > 10, values
            assert 'failed' in values['last_bus_error'], values
            assert int(values['reads']) > 100, values
            warnings = [
                s.message
                for a in list(diagnostics)
                for s in a.status
                if s.name == f'{name}: servo bus' and s.level == b'\x01'
            ]
            assert any('failed reads' in m for m in warnings), warnings
        # A read that fails every attempt (3 x ~34 ms timeouts) can leave the follower's
        # joint_states older than the teleop's state timeout (0.1 s): teleop then pauses for a
        # tick or two (the follower holds) and ramps on. Mostly it is following.
        teleop = [
            s
            for a in list(diagnostics)[faults_from:]
            for s in a.status
            if s.name == 'teleop: teleop'
        ]
        following = [s.message == 'following' for s in teleop]
        assert sum(following) > len(following) / 2, [s.message for s in teleop]
        assert all(node.process.poll() is None for node in nodes), outputs()
        for bus in (leader_bus, follower_bus):  # see the module doc
            bus.faults.drop, bus.faults.corrupt = 0.0, 0.0
        for node in nodes:
            assert node.stop() == 0, outputs()
        assert not any(follower_bus.torque(j.id) for j in follower.joints), 'torque off on exit'
