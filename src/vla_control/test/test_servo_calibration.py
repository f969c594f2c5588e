"""Calibration files, ticks <-> joint units, and the calibration routine on an emulated bus."""

import math
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from vla_common.errors import ConfigError
from vla_common.robot_config import load_robot_config
from vla_control.servo.bus import open_bus
from vla_control.servo.calibrate import CLOSE_STEP
from vla_control.servo.calibrate import SWEEP_STEP
from vla_control.servo.calibrate import CalibrationRecorder
from vla_control.servo.calibrate import run_calibration
from vla_control.servo.calibrate import servo_layout
from vla_control.servo.calibrate import zero_step
from vla_control.servo.calibration import RADIANS_PER_TICK
from vla_control.servo.calibration import ArmCalibration
from vla_control.servo.calibration import gripper_to_ticks
from vla_control.servo.calibration import radians_to_ticks
from vla_control.servo.calibration import ticks_to_gripper
from vla_control.servo.calibration import ticks_to_radians
from vla_control.servo.emulator import ServoBusEmulator
from vla_control.servo.models import STS3215
from vla_control.servo.models import XM430_W350

EXAMPLES = Path(__file__).resolve().parents[3] / 'config' / 'calibration'
SO101 = load_robot_config('so101')


@pytest.mark.parametrize('direction', [1, -1])
@pytest.mark.parametrize('homing', [0, 1, 2047, 2048, 4095])
def test_ticks_radians_round_trip_is_exact(homing, direction):
    for ticks in range(4096):
        radians = ticks_to_radians(ticks, homing, direction)
        assert radians_to_ticks(radians, homing, direction) == ticks
    assert ticks_to_radians(homing + 1024, homing, direction) == pytest.approx(
        direction * math.pi / 2
    )


def test_radians_land_on_the_nearest_tick():
    for radians in (-3.0, -0.1234, 0.0, 1e-4, 2.5):
        ticks = radians_to_ticks(radians, 2048, 1)
        assert abs(ticks_to_radians(ticks, 2048, 1) - radians) <= RADIANS_PER_TICK / 2


@pytest.mark.parametrize(('closed', 'open_'), [(1930, 3300), (2620, 1540)])
def test_gripper_round_trip_is_exact_and_maps_the_stops(closed, open_):
    lower, upper = 0.021, 0.057
    for ticks in range(min(closed, open_), max(closed, open_) + 1):
        value = ticks_to_gripper(ticks, closed, open_, lower, upper)
        assert gripper_to_ticks(value, closed, open_, lower, upper) == ticks
    assert ticks_to_gripper(closed, closed, open_, lower, upper) == pytest.approx(lower)
    assert ticks_to_gripper(open_, closed, open_, lower, upper) == pytest.approx(upper)


@pytest.mark.parametrize(
    ('robot', 'example', 'closed_value', 'open_value'),
    [
        # SO-101: radians of the servo from closed; ALOHA: the config's finger opening range.
        ('so101', 'so101_follower.example.yaml', 0.0, (3300 - 1930) * RADIANS_PER_TICK),
        ('aloha', 'aloha_left_follower.example.yaml', 0.021, 0.057),
    ],
)
def test_example_files_load_and_save_unchanged(tmp_path, robot, example, closed_value, open_value):
    config = load_robot_config(robot)
    calibration = ArmCalibration.load(EXAMPLES / example, config)
    assert calibration.names == tuple(yaml.safe_load((EXAMPLES / example).read_text())['joints'])
    calibration.save(tmp_path / 'copy.yaml')
    again = ArmCalibration.load(tmp_path / 'copy.yaml', config)
    assert again.to_dict() == calibration.to_dict()
    gripper = calibration.joints[-1]
    assert gripper.is_gripper
    assert gripper.to_value(gripper.closed) == pytest.approx(closed_value)
    assert gripper.to_value(gripper.open) == pytest.approx(open_value)
    for ticks in range(gripper.range_min - 100, gripper.range_max + 100):
        assert gripper.to_ticks(gripper.to_value(ticks)) == ticks


def example_dict():
    return yaml.safe_load((EXAMPLES / 'so101_follower.example.yaml').read_text())


def broken(change):
    data = example_dict()
    change(data)
    return data


@pytest.mark.parametrize(
    ('data', 'message'),
    [
        (broken(lambda d: d.update(robot='aloha')), "robot is 'aloha', expected 'so101'"),
        (broken(lambda d: d.update(arm='puppet')), 'arm must be one of'),
        (broken(lambda d: d.update(bus='can')), 'bus must be one of'),
        (broken(lambda d: d['joints'].update(elbow={'id': 9})), "['elbow'] are not joints"),
        (broken(lambda d: d['joints']['wrist_roll'].update(id=1)), 'ids must be unique'),
        (broken(lambda d: d['joints']['gripper'].pop('open')), "gripper 'gripper' needs"),
        (broken(lambda d: d['joints']['wrist_flex'].update(direction=2)), 'direction must be'),
        (broken(lambda d: d['joints']['wrist_flex'].update(range_min=3500)), 'range_min <'),
        (broken(lambda d: d['joints']['wrist_flex'].update(range_max=4096)), 'ticks must be'),
        (broken(lambda d: d['joints']['wrist_flex'].update(id=1.5)), 'must be integers'),
        (broken(lambda d: d['joints']['gripper'].update(open=1930)), 'closed and open must'),
    ],
)
def test_bad_calibrations_say_what_is_wrong(data, message):
    with pytest.raises(ConfigError, match='so101_test') as error:
        ArmCalibration.from_dict(data, SO101, 'so101_test')
    assert message in str(error.value)


def test_a_missing_or_malformed_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match='cannot read calibration'):
        ArmCalibration.load(tmp_path / 'none.yaml', SO101)
    (tmp_path / 'bad.yaml').write_text('joints: [')
    with pytest.raises(ConfigError, match='malformed calibration'):
        ArmCalibration.load(tmp_path / 'bad.yaml', SO101)


def test_aloha_layouts_are_per_side():
    assert servo_layout('aloha', 'right')['right_gripper'] == 9
    assert set(servo_layout('aloha', 'left')) == {
        n for n in load_robot_config('aloha')['joints'] if n.startswith('left_')
    }
    with pytest.raises(ConfigError, match='side must be one of'):
        servo_layout('aloha')
    with pytest.raises(ConfigError, match='no servo layout'):
        servo_layout('koch')


# The arm a person calibrates: per joint (zero pose, one stop, the other stop).
SO101_ARM = {
    'shoulder_pan': (2047, 820, 3270),
    'shoulder_lift': (2050, 900, 3200),
    'elbow_flex': (2041, 960, 3140),
    'wrist_flex': (2060, 990, 3120),
    'wrist_roll': (2048, 280, 3870),
    'gripper': (2400, 1930, 3300),  # closed at 1930
}


class Person:
    """Does what each calibration step asks, on the emulated servos."""

    def __init__(self, emulator, layout, arm):
        self.emulator, self.layout, self.arm = emulator, layout, arm
        self.steps = []

    def __call__(self, message, sample):
        self.steps.append(message)
        if message == zero_step('so101'):
            for name, (zero, _, _) in self.arm.items():
                self.emulator.set_position(self.layout[name], zero)
        elif message == SWEEP_STEP:  # slowly: a hand moves far less than half a turn per sample
            for name, (zero, low, high) in self.arm.items():
                path = [*range(zero, low, -300), *range(low, high, 300), high, zero]
                for ticks in path:
                    self.emulator.set_position(self.layout[name], ticks)
                    sample()
        elif message == CLOSE_STEP:
            self.emulator.set_position(self.layout['gripper'], self.arm['gripper'][1])


def test_the_routine_records_zero_range_and_gripper_stops():
    layout = servo_layout('so101')
    with ServoBusEmulator(dict.fromkeys(layout.values(), STS3215)) as emulator:
        emulator.inject('drop')  # the first torque-off write: retried
        bus = open_bus('feetech', emulator.port)
        person = Person(emulator, layout, SO101_ARM)
        calibration = run_calibration(bus, SO101, layout, 'follower', person, {'elbow_flex': -1})
        bus.close()
        assert not any(emulator.torque(i) for i in layout.values())
    assert person.steps == [zero_step('so101'), SWEEP_STEP, CLOSE_STEP]
    joints = calibration.to_dict()['joints']
    for name, (zero, low, high) in SO101_ARM.items():
        if name == 'gripper':
            assert joints[name] == {'id': 6, 'closed': low, 'open': high, 'unit': 'radians'}
        else:
            direction = -1 if name == 'elbow_flex' else 1
            assert joints[name] == {
                'id': layout[name],
                'homing_offset': zero,
                'direction': direction,
                'range_min': low,
                'range_max': high,
            }


def test_a_joint_that_did_not_move_or_crossed_the_encoder_zero_is_named():
    recorder = CalibrationRecorder({'a': 1, 'b': 2}, [])
    recorder.record_zero({1: 2048, 2: 2048})
    recorder.observe({1: 1000, 2: 2050})
    with pytest.raises(ConfigError, match=r"\['b'\] did not move"):
        recorder.to_dict('so101', 'follower', {})
    recorder.observe({1: 4090, 2: 1000})
    recorder.observe({1: 5, 2: 3000})
    with pytest.raises(ConfigError, match=r"\['a'\] crossed the encoder zero"):
        recorder.to_dict('so101', 'follower', {})


def next_step(process):
    """The next step vla_calibrate prints."""
    while True:
        line = process.stdout.readline()
        assert line, 'vla_calibrate ended before its next step'
        if line.strip() in (zero_step('aloha'), SWEEP_STEP, CLOSE_STEP):
            return line.strip()


def wait_for_reads(emulator, count=2):
    """Until the program under test has sent `count` more instructions (read what was set)."""
    target = emulator.stats.instructions + count
    deadline = time.monotonic() + 5.0
    while emulator.stats.instructions < target:
        assert time.monotonic() < deadline, 'the program stopped reading the servos'
        time.sleep(0.005)


def test_vla_calibrate_walks_a_person_through_it(tmp_path):
    """The command, on an ALOHA arm: the prompts, Enter between the steps, the file."""
    layout = servo_layout('aloha', 'right')
    arm = dict.fromkeys(layout, (2048, 1200, 2900))
    arm['right_gripper'] = (2000, 1540, 2620)  # closed at 1540
    out = tmp_path / 'right.yaml'
    with ServoBusEmulator(dict.fromkeys(layout.values(), XM430_W350)) as emulator:
        process = subprocess.Popen(
            [
                sys.executable,
                '-m',
                'vla_control.servo.cli',
                f'port:={emulator.port}',
                'robot:=aloha',
                'side:=right',
                'arm:=leader',
                f'out:={out}',
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

        def press_enter():
            process.stdin.write('\n')
            process.stdin.flush()

        assert next_step(process) == zero_step('aloha')
        for name, (zero, _, _) in arm.items():
            emulator.set_position(layout[name], zero)
        press_enter()
        assert next_step(process) == SWEEP_STEP
        for stop in (1, 2, 0):
            for name, ticks in arm.items():
                emulator.set_position(layout[name], ticks[stop])
            wait_for_reads(emulator)
        press_enter()
        assert next_step(process) == CLOSE_STEP
        emulator.set_position(layout['right_gripper'], arm['right_gripper'][1])
        press_enter()
        output, _ = process.communicate(timeout=20)
    assert process.returncode == 0, output
    calibration = ArmCalibration.load(out, load_robot_config('aloha'))
    assert calibration.arm == 'leader'
    joints = calibration.to_dict()['joints']
    assert joints['right_gripper'] == {'id': 9, 'closed': 1540, 'open': 2620, 'unit': 'stops'}
    assert joints['right_elbow'] == {
        'id': 4,
        'homing_offset': 2048,
        'direction': 1,
        'range_min': 1200,
        'range_max': 2900,
    }


def test_vla_calibrate_errors_are_one_line(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            '-m',
            'vla_control.servo.cli',
            'robot:=so101',
            f'out:={tmp_path}/x.yaml',
            'port:=/dev/does-not-exist',
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 3, result.stderr
    assert result.stderr.startswith(
        'vla_calibrate: error: cannot open servo bus /dev/does-not-exist'
    )
    assert 'Traceback' not in result.stderr
