"""`vla bringup` as a user runs it: real node processes, observed over DDS."""

import os
import re
import shutil
import signal
import sys
import time

import pytest
from sensor_msgs.msg import Image
from sensor_msgs.msg import JointState

from vla_common.qos import IMAGE_QOS
from vla_common.qos import STATE_QOS

pytestmark = pytest.mark.ros


def vla(*args):
    return [sys.executable, '-m', 'vla_bringup.cli', *args]


def started_pids(output):
    return [int(pid) for pid in re.findall(r'\[vla\] started \S+ \(.*, pid (\d+)\)', output)]


def write_test_pattern_rig(directory):
    """A robot config with two test-pattern cameras, for runner tests without hardware."""
    (directory / 'robots').mkdir()
    (directory / 'robots' / 'so101.yaml').write_text(
        'cameras:\n  front: {source: test_pattern}\n  wrist: {source: test_pattern}\n'
    )
    return directory


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_bringup_runs_the_simulated_robot_and_stops_cleanly_on_ctrl_c(ros, run_command):
    front = ros.subscribe(Image, 'camera/front/image_raw', IMAGE_QOS)
    wrist = ros.subscribe(Image, 'camera/wrist/image_raw', IMAGE_QOS)
    states = ros.subscribe(JointState, 'joint_states', STATE_QOS)
    runner = run_command(
        vla('bringup', 'robot:=so101', 'mode:=control', '--status-period', '1'), 'bringup'
    )
    ros.wait_for(lambda: len(front) >= 5 and len(wrist) >= 5, 60, 'images from both cameras')
    ros.wait_for(lambda: len(states) >= 50, 10, 'joint states')
    # On a loaded machine the sim honestly warns that it runs slower than real time.
    healthy = re.compile(
        r'\[vla\] status: controller: controller OK holding.*'
        r'sim: simulation (OK "pick|WARN slower than real time)'
    )
    ros.wait_for(
        lambda: healthy.search(runner.output),
        30,
        'a status line with both nodes healthy',
        lambda: '\n'.join(line for line in runner.output.splitlines() if 'status:' in line),
    )
    pids = started_pids(runner.output)
    assert len(pids) == 2
    assert '[sim] ' in runner.output, 'node output is prefixed with the node name'

    assert runner.stop(signal.SIGINT, timeout=15) == 0, runner.output
    assert not [pid for pid in pids if alive(pid)], 'every node must be stopped'
    assert '[vla] stopping' in runner.output
    assert 'Traceback' not in runner.output, runner.output
    assert 'deprecated' not in runner.output, 'the vla arguments must not reach rcl'


def test_bringup_reports_which_required_node_failed_and_why(run_command, tmp_path):
    (tmp_path / 'robots').mkdir()
    (tmp_path / 'robots' / 'rig.yaml').write_text(
        'cameras:\n'
        '  ok: {source: test_pattern}\n'
        '  top: {source: v4l2, device: /dev/video_nonexistent}\n'
    )
    runner = run_command(
        vla('bringup', 'robot:=rig', 'sim:=false'),
        'bringup',
        env={'VLA_CONFIG_DIR': str(tmp_path)},
    )
    assert runner.wait_exit(30) == 1, runner.output
    assert (
        '[vla] error: required node camera_top (vla_perception/camera_node) failed: '
        'device or input unavailable' in runner.output
    )
    assert "camera device '/dev/video_nonexistent' does not exist" in runner.output
    pids = started_pids(runner.output)
    assert len(pids) == 2
    assert not [pid for pid in pids if alive(pid)], 'the healthy node is stopped too'


def test_bringup_duration_and_config_errors(run_command):
    bad = run_command(vla('bringup', 'robot:=ur5'), 'bad')
    assert bad.wait_exit(20) == 2
    assert "vla: error: unknown robot 'ur5'" in bad.output
    timed = run_command(vla('bringup', '--duration', '2', '--status-period', '0'), 'timed')
    assert timed.wait_exit(30) == 0, timed.output
    assert '[vla] 2 s elapsed, stopping' in timed.output


def test_the_vla_console_script_is_installed():
    assert shutil.which('vla'), 'scripts/setup.sh installs the vla command'


def test_nodes_stop_when_the_runner_is_killed(run_command, tmp_path):
    runner = run_command(
        vla('bringup', 'sim:=false', '--status-period', '0'),
        'bringup',
        env={'VLA_CONFIG_DIR': str(write_test_pattern_rig(tmp_path))},
    )
    deadline = time.monotonic() + 30
    while len(started_pids(runner.output)) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    pids = started_pids(runner.output)
    assert len(pids) == 2, runner.output
    runner.process.kill()  # SIGKILL: no chance to clean up
    runner.process.wait()
    deadline = time.monotonic() + 15
    while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in pids if alive(pid)], 'orphaned nodes must terminate'


def test_teleop_of_the_simulated_expert_picks_the_cube(ros, run_command):
    """sim (expert on leader/joint_states) -> teleop -> joint_command -> sim: sim/success."""
    from std_msgs.msg import Bool

    success = ros.subscribe(Bool, 'sim/success', STATE_QOS)
    runner = run_command(vla('bringup', 'robot:=so101', 'mode:=teleop'), 'bringup')
    ros.wait_for(
        lambda: any(m.data for m in list(success)), 60, 'sim/success true', lambda: runner.output
    )
    assert 'teleoperating so101' in runner.output


def test_teleop_drives_both_simulated_aloha_arms(ros, run_command):
    """The 14-joint ALOHA through the same chain: both followers pick up what the expert does.

    Whether the insertion succeeds is the expert's matter (test_experts, bench/expert_bench.py:
    it depends on how smoothly commands flow on a loaded machine); here the plumbing.
    """
    states = ros.subscribe(JointState, 'joint_states', STATE_QOS)
    arguments = ('robot:=aloha', 'sim_task:=insertion', 'camera_size:=160x120')
    runner = run_command(vla('bringup', 'mode:=teleop', *arguments), 'bringup')

    held, seen = [0], [0]  # consecutive joint_states with both arms holding something; read

    def holding():  # arms lowered, grippers shut on an object (wider than shut on nothing)
        messages = list(states)
        for message in messages[seen[0] :]:
            q = dict(zip(message.name, message.position, strict=True))
            grasp = all(
                q[f'{side}_shoulder'] > -0.5 and 0.028 < q[f'{side}_gripper'] < 0.05
                for side in SIDES
            )
            held[0] = held[0] + 1 if grasp else 0
        seen[0] = len(messages)
        return held[0] >= 100  # 1 s at 100 Hz: not a gripper passing through on its way

    ros.wait_for(holding, 60, 'both ALOHA arms to hold their objects', lambda: runner.output)
    assert 'teleoperating aloha' in runner.output


SIDES = ('left', 'right')


def test_vla_record_saves_successful_expert_episodes(run_command, tmp_path):
    import json

    import yaml

    from vla_common.robot_config import load_robot_config

    small = load_robot_config('so101')
    small.pop('_path')
    for camera in small['cameras'].values():
        camera.update(width=96, height=72)
    (tmp_path / 'config' / 'robots').mkdir(parents=True)
    (tmp_path / 'config' / 'robots' / 'so101.yaml').write_text(yaml.safe_dump(small))
    dataset = tmp_path / 'dataset'
    runner = run_command(
        vla(
            'record',
            'robot:=so101',
            'episodes:=1',
            'episode_s:=9',
            'keep:=success',
            f'dataset:={dataset}',
            'seed:=5',
        ),
        'record',
        env={'VLA_CONFIG_DIR': str(tmp_path / 'config')},
    )
    assert runner.wait_exit(120) == 0, runner.output
    assert '[vla] done: 1 of 1 episodes saved' in runner.output
    info = json.loads((dataset / 'meta' / 'info.json').read_text())
    assert info['total_episodes'] == 1
    assert 260 <= info['total_frames'] <= 275  # 9 s at 30 fps
    assert set(info['features']) >= {'observation.images.front', 'observation.images.wrist'}
