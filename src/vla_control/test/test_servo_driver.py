"""The arm driver and the servo robot on an emulated bus: faults, the fault state, safe writes."""

import math
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from vla_common.diagnostics import Level
from vla_common.errors import ConfigError
from vla_common.errors import DeviceError
from vla_common.robot_config import load_robot_config
from vla_control.servo.bus import open_bus
from vla_control.servo.calibration import RADIANS_PER_TICK
from vla_control.servo.calibration import ArmCalibration
from vla_control.servo.driver import ArmDriver
from vla_control.servo.driver import DriverConfig
from vla_control.servo.driver import TargetRejectedError
from vla_control.servo.emulator import ServoBusEmulator
from vla_control.servo.models import BUS_MODELS
from vla_control.servo.robot import PARAMETERS
from vla_control.servo.robot import Mode
from vla_control.servo.robot import ServoRobot
from vla_control.servo.robot import servo_robot_from_params

SERVO = Path(__file__).resolve().parents[1] / 'vla_control' / 'servo'
EXAMPLES = Path(__file__).resolve().parents[3] / 'config' / 'calibration'
CALIBRATIONS = {
    'feetech': ('so101', 'so101_follower.example.yaml'),
    'dynamixel': ('aloha', 'aloha_left_follower.example.yaml'),
}


def test_the_servo_package_imports_without_rclpy():
    modules = sorted(f'vla_control.servo.{p.stem}' for p in SERVO.glob('*.py'))
    assert 'vla_control.servo.driver' in modules
    code = f"import sys, {', '.join(modules)}; sys.exit('rclpy' in sys.modules)"
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def example_calibration(bus):
    robot, name = CALIBRATIONS[bus]
    return ArmCalibration.load(EXAMPLES / name, load_robot_config(robot))


def emulator_for(calibration, **kwargs):
    model = BUS_MODELS[calibration.bus]
    return ServoBusEmulator({j.id: model for j in calibration.joints}, **kwargs)


def wait_until(condition, what, timeout=5.0):
    """For effects of sync writes, which the servos (emulator thread) do not acknowledge."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f'timed out waiting for {what}'
        time.sleep(0.002)


def driver_on(emulator, calibration, retries=2, max_failures=10):
    bus = open_bus(calibration.bus, emulator.port)
    return ArmDriver(bus, calibration, DriverConfig(retries, max_failures))


@pytest.mark.parametrize('bus', ['feetech', 'dynamixel'])
def test_a_read_loop_survives_dropped_and_corrupt_replies(bus):
    """300 cycles with 20% of replies dropped and 10% corrupt: never raises, every failure is
    counted, and every reading it returns is the arm's true position."""
    calibration = example_calibration(bus)
    with emulator_for(calibration, seed=1) as emulator:
        driver = driver_on(emulator, calibration)
        robot = ServoRobot([driver], Mode.LEADER)
        robot.start(now=0.0)
        emulator.faults.drop, emulator.faults.corrupt = 0.2, 0.1
        missed = 0
        for cycle in range(300):
            if cycle % 50 == 0:  # a person moves the leader arm
                for k, joint in enumerate(calibration.joints):
                    emulator.set_position(joint.id, joint.range_min + 37 * (cycle // 50 + k))
            positions = robot.cycle(now=cycle * 0.01)
            if positions is None:
                missed += 1
                continue
            for joint in calibration.joints:
                assert positions[joint.name] == joint.to_value(emulator.position(joint.id))
        stats = driver.stats
        injected = emulator.stats.dropped + emulator.stats.corrupted
        assert injected > 50
        # Each injected fault fails one attempt; a busy machine may add late replies.
        assert stats.failed_attempts >= injected
        assert stats.failed_reads == missed < 30, 'retries recover most reads'
        assert stats.reads == 300 - missed
        assert not driver.fault
        health = robot.health(now=3.0)
        assert health.values['failed_attempts'] == str(stats.failed_attempts)
        assert health.level is not Level.ERROR


@pytest.mark.parametrize('bus', ['feetech', 'dynamixel'])
def test_torque_switches_on_a_noisy_bus(bus):
    """30% faulty replies: torque on and off still reach every servo (retried servo by servo;
    as one transfer for all of them, half of the attempts would fail)."""
    calibration = example_calibration(bus)
    with emulator_for(calibration, seed=3) as emulator:
        driver = driver_on(emulator, calibration)
        emulator.faults.drop, emulator.faults.corrupt = 0.2, 0.1
        for enabled in (True, False, True, False, True):
            driver.torque(enabled)
            assert all(emulator.torque(j.id) == enabled for j in calibration.joints)
        assert driver.stats.failed_attempts > 0, 'the faults were there'


def test_consecutive_failures_make_a_fault_that_holds_and_recovers(monkeypatch):
    calibration = example_calibration('feetech')
    with emulator_for(calibration, speed=0.0) as emulator:  # a pushed servo stays pushed
        driver = driver_on(emulator, calibration, retries=1, max_failures=3)
        robot = ServoRobot([driver], Mode.FOLLOWER)
        robot.start(now=0.0)
        pan = calibration.joints[0]
        robot.command(['shoulder_pan'], [0.2])
        assert robot.cycle(now=0.01) is not None
        wait_until(lambda: emulator.goal(pan.id) == pan.to_ticks(0.2), 'the first goal')
        writes = []
        send = driver.bus.write_goals
        monkeypatch.setattr(
            driver.bus, 'write_goals', lambda goals: send(writes.append(goals) or goals)
        )
        emulator.faults.drop = 1.0  # the bus goes silent
        for k in range(3):
            assert robot.cycle(now=0.02 + 0.01 * k) is None
        assert driver.fault
        assert len(writes) == 2, 'a bus that only failed a little still gets the targets'
        writes.clear()
        health = robot.health(now=0.1)
        assert health.level is Level.ERROR
        assert '3 failed reads in a row' in health.message
        assert 'holding (torque on, no new goals)' in health.message
        assert health.values['last_good_age_s'] == '0.090'
        robot.command(['shoulder_pan'], [-0.3])  # taken, but not sent during the fault
        robot.cycle(now=0.06)
        assert writes == [], 'no goals during the fault'
        assert emulator.goal(pan.id) == pan.to_ticks(0.2)
        assert emulator.torque(pan.id), 'the arm holds with torque'
        emulator.set_position(pan.id, pan.to_ticks(0.25))  # someone pushed it meanwhile
        emulator.faults.drop = 0.0
        positions = robot.cycle(now=0.07)
        assert positions['shoulder_pan'] == pytest.approx(0.25, abs=1e-3)
        assert not driver.fault
        assert robot.recoveries == 1
        # It holds where it is instead of jumping to the target sent during the fault.
        assert writes[0][pan.id] == pan.to_ticks(positions['shoulder_pan'])
        wait_until(lambda: emulator.goal(pan.id) == writes[0][pan.id], 'the hold goal')
        assert robot.health(now=0.08).level is Level.WARN  # failed reads since the last report
        assert robot.health(now=0.09).level is Level.OK


def test_bad_targets_are_refused_before_the_wire():
    calibration = example_calibration('feetech')
    with emulator_for(calibration) as emulator:
        driver = driver_on(emulator, calibration)
        robot = ServoRobot([driver], Mode.FOLLOWER)
        robot.start(now=0.0)
        robot.command(['elbow_flex'], [0.1])
        robot.cycle(now=0.01)
        elbow = calibration.joints[2]
        wait_until(lambda: emulator.goal(elbow.id) == elbow.to_ticks(0.1), 'the first goal')
        before = emulator.stats.instructions
        bad = [
            (['elbow_flex'], [math.nan], 'NaN or inf'),
            (['elbow_flex'], [2.0], 'outside the joint limits'),
            (['elbow'], [0.0], "unknown joints ['elbow']"),
            (['elbow_flex', 'gripper'], [0.2], '2 names but 1 positions'),
        ]
        for names, positions, reason in bad:
            with pytest.raises(TargetRejectedError, match=re.escape(reason)):
                robot.command(names, positions)
        for names, positions, reason in bad[:2]:  # the driver's own check, for any caller
            with pytest.raises(TargetRejectedError, match=reason):
                driver.write_goal(dict(zip(names, positions, strict=True)))
        assert driver.stats.refused_writes == 2
        assert emulator.stats.instructions == before, 'nothing went on the wire'
        assert robot.commands_rejected == len(bad)
        assert robot.health(now=0.1).level is Level.WARN
        writes = []
        send = driver.bus.write_goals
        driver.bus.write_goals = lambda goals: send(writes.append(goals) or goals)
        robot.cycle(now=0.02)
        assert writes[0][elbow.id] == elbow.to_ticks(0.1), 'the last valid target holds'


def test_targets_past_the_stops_are_clipped_and_grippers_may_squeeze():
    calibration = example_calibration('feetech')
    with emulator_for(calibration) as emulator:
        driver = driver_on(emulator, calibration)
        robot = ServoRobot([driver], Mode.FOLLOWER)
        robot.start(now=0.0)
        # wrist_roll -2.74 rad is within the URDF's limits, past this arm's recorded stop;
        # the gripper at -0.1 rad squeezes past closed (0), as grasping does.
        robot.command(['wrist_roll', 'gripper'], [-2.74, -0.1])
        assert robot.commands_clipped == 1
        assert robot.last_clipped == ['wrist_roll']
        wrist, gripper = calibration.joints[4], calibration.joints[5]
        writes = []
        send = driver.bus.write_goals
        driver.bus.write_goals = lambda goals: send(writes.append(goals) or goals)
        robot.cycle(now=0.01)
        assert writes[0][wrist.id] == wrist.range_min
        assert writes[0][gripper.id] == gripper.closed - round(0.1 / RADIANS_PER_TICK)
        assert robot.health(now=0.02).values['commands_clipped_to_stops'] == '1'
        # A gripper mounted with `closed` near the encoder's zero cannot squeeze past it.
        data = calibration.to_dict()
        data['joints']['gripper'].update(closed=50, open=1400)
        near_zero = ArmCalibration.from_dict(data, load_robot_config('so101'))
        with pytest.raises(TargetRejectedError, match="beyond the servo's encoder range"):
            ArmDriver(driver.bus, near_zero).check_targets({'gripper': -0.1})


def test_a_follower_starts_where_it_is_and_follows_commands():
    calibration = example_calibration('dynamixel')
    with emulator_for(calibration, speed=20000.0) as emulator:
        waist, shoulder, gripper = (calibration.joints[k] for k in (0, 1, -1))
        emulator.set_position(waist.id, waist.range_min - 5)  # resting just past its stop
        emulator.set_position(shoulder.id, 1700)
        robot = ServoRobot([driver_on(emulator, calibration)], Mode.FOLLOWER)
        robot.start(now=0.0)
        assert all(emulator.torque(joint.id) for joint in calibration.joints)
        assert emulator.goal(waist.id) == waist.range_min, 'held at its stop, not past it'
        assert emulator.goal(shoulder.id) == 1700
        assert emulator.goal(gripper.id) == 2048
        robot.command(['left_shoulder', 'left_gripper'], [0.3, 0.05])
        deadline = time.monotonic() + 5
        positions = None
        while positions is None or positions['left_shoulder'] != pytest.approx(0.3, abs=2e-3):
            assert time.monotonic() < deadline, f'the shoulder did not get there: {positions}'
            positions = robot.cycle(now=time.monotonic())
        assert emulator.goal(shoulder.id) == shoulder.to_ticks(0.3)
        assert emulator.goal(gripper.id) == gripper.to_ticks(0.05)
        robot.stop(torque_off=True)
        assert not any(emulator.torque(j.id) for j in calibration.joints)


def test_parameters_build_a_robot_or_say_what_is_wrong(tmp_path):
    calibration = example_calibration('feetech')
    leader = tmp_path / 'leader.yaml'
    leader.write_text(yaml.safe_dump({**calibration.to_dict(), 'arm': 'leader'}))
    config = load_robot_config('so101')
    values = {p.name: p.default for p in PARAMETERS}
    with emulator_for(calibration) as emulator:
        values.update(ports=[emulator.port], calibrations=[str(leader)], mode='leader')
        robot = servo_robot_from_params(values, config)
        assert robot.names == calibration.names
        robot.stop(torque_off=False)
        for change, message in (
            ({'mode': 'puppet'}, 'mode must be follower or leader'),
            ({'mode': 'follower'}, 'is for a leader arm, mode is follower'),
            ({'calibrations': []}, 'give one calibration file per port'),
            ({'rate_hz': 0.0}, 'rate_hz must be in'),
            ({'max_consecutive_failures': 0}, 'max_consecutive_failures must be >= 1'),
        ):
            with pytest.raises(ConfigError, match=message):
                servo_robot_from_params({**values, **change}, config)
    with pytest.raises(DeviceError, match='cannot open servo bus /dev/null-servo'):
        servo_robot_from_params({**values, 'ports': ['/dev/null-servo']}, config)


def test_missing_servos_are_named_at_start():
    calibration = example_calibration('feetech')
    with ServoBusEmulator({1: BUS_MODELS['feetech'], 2: BUS_MODELS['feetech']}) as emulator:
        robot = ServoRobot([driver_on(emulator, calibration, retries=0)], Mode.LEADER)
        with pytest.raises(DeviceError, match=r'elbow_flex \(id 3\), wrist_flex \(id 4\)'):
            robot.start(now=0.0)
