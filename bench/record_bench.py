"""Recording benchmark: 3 cameras 480x640 at 30 fps + joint states at 200 Hz into a dataset.

    source env.sh && python bench/record_bench.py                    # 10 episodes of 20 s
    python bench/record_bench.py --episodes 2 --seconds 5            # a quick look

Three camera nodes (test pattern) and the recorder node run as their own processes; this
process publishes joint_states at 200 Hz and joint_command at 50 Hz and drives the episodes
through the recorder's services. Reported per run: frames recorded against the nominal count,
camera frames the recorder had to repeat (no new image at its tick), the time from stop to the
next start (the gap between episodes), the encoding speed relative to real time, and MB per
recorded minute.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]
CAMERAS = ('cam0', 'cam1', 'cam2')


def start_nodes(workdir: Path, dataset: Path) -> list[subprocess.Popen]:
    from vla_bringup.graph import NodeSpec
    from vla_bringup.runner import node_command

    specs = [NodeSpec('vla_perception', 'camera_node', f'bench_{c}', {'name': c}) for c in CAMERAS]
    specs.append(
        NodeSpec(
            'vla_teleop',
            'recorder_node',
            'bench_recorder',
            {'robot': 'so101', 'dataset_dir': str(dataset), 'cameras': list(CAMERAS)},
        )
    )
    processes = []
    for spec in specs:
        params = workdir / f'{spec.name}.yaml'
        params.write_text(yaml.safe_dump({'/**': {'ros__parameters': spec.parameters}}))
        with (workdir / f'{spec.name}.log').open('w') as log:
            processes.append(
                subprocess.Popen(node_command(spec, params), stdout=log, stderr=subprocess.STDOUT)
            )
    return processes


def offline_encoding_speed(frames: int = 300) -> float:
    """Encoding speed of one 640x480 camera relative to real time (30 fps), alone."""
    from vla_teleop.dataset import DatasetSpec
    from vla_teleop.dataset import VideoEncoder

    spec = DatasetSpec(fps=30, state_names=('a',), action_names=('a',))
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (480, 640, 3), dtype=np.uint8) // 8 * 8 for _ in range(10)]
    with tempfile.TemporaryDirectory() as tmp:
        encoder = VideoEncoder(
            Path(tmp) / 'test.mp4', spec.fps, 480, 640, spec.codec, spec.gop, spec.crf
        )
        start = time.perf_counter()
        for i in range(frames):
            encoder.add(np.roll(images[i % 10], i, axis=1))
        encoder.close()
        elapsed = time.perf_counter() - start
    return frames / 30.0 / elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--episodes', type=int, default=10)
    parser.add_argument('--seconds', type=float, default=20.0)
    args = parser.parse_args()
    os.environ.setdefault('ROS_DOMAIN_ID', str(1 + os.getpid() % 100))
    os.environ.setdefault(
        'FASTDDS_DEFAULT_PROFILES_FILE', str(REPO / 'config' / 'dds' / 'fastdds_localhost.xml')
    )
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from sensor_msgs.msg import JointState

    from vla_common.qos import STATE_QOS
    from vla_msgs.srv import StartEpisode
    from vla_msgs.srv import StopEpisode

    names = ['shoulder_pan', 'shoulder_lift', 'elbow_flex', 'wrist_flex', 'wrist_roll', 'gripper']
    workdir = Path(tempfile.mkdtemp(prefix='vla_record_bench_'))
    dataset = workdir / 'dataset'
    processes = start_nodes(workdir, dataset)
    rclpy.init()
    node = rclpy.create_node('record_benchmark')
    states = node.create_publisher(JointState, 'joint_states', STATE_QOS)
    commands = node.create_publisher(JointState, 'joint_command', STATE_QOS)
    stop = threading.Event()
    recorder_values: dict[str, str] = {}

    def publish(publisher, period):
        k = 0
        while not stop.wait(period):
            k += 1
            publisher.publish(JointState(name=names, position=[np.sin(k * period)] * 6))

    for publisher, period in ((states, 1 / 200), (commands, 1 / 50)):
        threading.Thread(target=publish, args=(publisher, period), daemon=True).start()

    def on_diagnostics(msg):
        for status in msg.status:
            if status.name.endswith(': recorder'):
                recorder_values.update({kv.key: kv.value for kv in status.values})

    node.create_subscription(DiagnosticArray, 'diagnostics', on_diagnostics, STATE_QOS)
    executor = rclpy.executors.SingleThreadedExecutor()
    executor.add_node(node)
    threading.Thread(target=executor.spin, daemon=True).start()

    def call(srv_type, name, request):
        client = node.create_client(srv_type, name)
        client.wait_for_service(timeout_sec=30)
        return client.call(request)  # the executor spins in its own thread

    results = []
    stop_time = time.monotonic()
    try:
        for episode in range(args.episodes):
            asked = time.monotonic()
            while not (
                started := call(
                    StartEpisode,
                    'recorder/start_episode',
                    StartEpisode.Request(instruction='benchmark'),
                )
            ).success:
                if time.monotonic() - asked > 60:
                    raise SystemExit(f'recorder did not start: {started.message}')
                time.sleep(0.2)
            gap = time.monotonic() - stop_time if episode else 0.0
            time.sleep(args.seconds)
            repeated = recorder_values.get('repeated_frames', '')
            stop_time = time.monotonic()
            stopped = call(StopEpisode, 'recorder/stop_episode', StopEpisode.Request(keep=True))
            flush = time.monotonic() - stop_time
            results.append((stopped.num_frames, repeated, gap, flush, stopped.message))
            print(
                f'episode {episode}: {stopped.num_frames} frames, repeated [{repeated}], '
                f'gap before it {gap:.2f} s, stop took {flush:.2f} s',
                flush=True,
            )
    finally:
        stop.set()
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(10)
        executor.shutdown()
        rclpy.try_shutdown()

    frames = np.array([r[0] for r in results])
    nominal = args.seconds * 30
    megabytes = sum(f.stat().st_size for f in dataset.rglob('*') if f.is_file()) / 1e6
    minutes = frames.sum() / 30 / 60
    print(
        f'\nmachine: {os.cpu_count()} cores {platform.machine()}, Python '
        f'{platform.python_version()}; {args.episodes} episodes x {args.seconds:g} s, '
        f'3 x 640x480 @ 30 fps, joint_states 200 Hz'
    )
    print(f'frames per episode: {frames.min()}-{frames.max()} (nominal {nominal:g})')
    print(
        f'gap between episodes (stop -> next start): max '
        f'{max(r[2] for r in results[1:]) if len(results) > 1 else 0:.2f} s; '
        f'stop (flush) max {max(r[3] for r in results):.2f} s'
    )
    print(f'dataset: {megabytes:.1f} MB for {minutes:.2f} min = {megabytes / minutes:.1f} MB/min')
    print(f'offline encoding, one 640x480 camera: {offline_encoding_speed():.1f}x real time')
    shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
