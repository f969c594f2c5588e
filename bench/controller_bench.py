"""Controller benchmark: output timing over DDS, and smoothness of the chunk merge modes.

    source env.sh && python bench/controller_bench.py                  # both parts
    python bench/controller_bench.py --part timing --seconds 20
    python bench/controller_bench.py --part smoothness --plot bench/controller_smoothness.png

timing: the controller node runs as its own process at 200 and 500 Hz; this process plays an
ideal arm (joint_states = last command, 100 Hz) and a policy (a chunk every 0.25 s, 30 actions at
30 Hz, stamped 100 ms before it is sent, as if inference took that long). It measures, in this
subscriber process, the period error of joint_command arrivals (|interval - 1/rate|) and, from
the controller's diagnostics, the time from a chunk's arrival to the first command using it.

smoothness: the controller core alone, fed the same chunk stream for every merge mode. Each
chunk predicts a smooth reference with its own error (offset and slope drift, as consecutive
policy predictions disagree), arrives 80-120 ms after its observation, and replaces or blends
with the previous one. Reported: the largest per-tick step and jerk within 0.2 s after each
chunk switch, and the RMS tracking error against the reference.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--part', choices=('timing', 'smoothness', 'both'), default='both')
    parser.add_argument('--seconds', type=float, default=20.0, help='timing: measured seconds')
    parser.add_argument('--rates', type=float, nargs='+', default=[200.0, 500.0])
    parser.add_argument('--plot', type=Path, default=REPO / 'bench' / 'controller_smoothness.png')
    parser.add_argument('--seed', type=int, default=0)
    return parser.parse_args()


# --- timing over DDS ---------------------------------------------------------------------------


def measure_timing(rate: float, seconds: float) -> dict:
    import rclpy
    from builtin_interfaces.msg import Duration
    from diagnostic_msgs.msg import DiagnosticArray
    from sensor_msgs.msg import JointState

    from vla_bringup.graph import NodeSpec
    from vla_bringup.runner import node_command
    from vla_common.qos import STATE_QOS
    from vla_common.robot_config import load_robot_config
    from vla_control.limits import JointLimits
    from vla_msgs.msg import ActionChunk

    names = list(JointLimits.from_robot_config(load_robot_config('so101')).names)
    with tempfile.TemporaryDirectory(prefix='vla_bench_') as tmp:
        spec = NodeSpec(
            'vla_control',
            'controller_node',
            'bench_controller',
            {'robot': 'so101', 'rate_hz': rate},
        )
        params = Path(tmp) / 'controller.yaml'
        params.write_text(yaml.safe_dump({'/**': {'ros__parameters': spec.parameters}}))
        with (Path(tmp) / 'controller.log').open('w') as log:
            controller = subprocess.Popen(
                node_command(spec, params), stdout=log, stderr=subprocess.STDOUT
            )
        rclpy.init()
        node = rclpy.create_node('controller_benchmark')
        lock = threading.Lock()
        position = np.zeros(len(names))
        arrivals, sent_stamps, latency = [], [], ['-']

        def on_command(msg: JointState) -> None:
            nonlocal position
            arrivals.append(time.monotonic())
            sent_stamps.append(msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9)
            with lock:
                position = np.array(msg.position)

        def publish_state() -> None:
            with lock:
                state_pub.publish(JointState(name=names, position=position.tolist()))

        sequence = [0]

        def publish_chunk() -> None:
            sequence[0] += 1
            now = node.get_clock().now().nanoseconds * 1e-9
            stamp = now - 0.1  # the observation was taken 100 ms ago
            times = stamp + np.arange(1, 31) / 30.0
            rows = 0.4 * np.sin(np.outer(times, np.linspace(0.5, 1.5, len(names))))
            msg = ActionChunk(sequence=sequence[0], joint_names=names, horizon=30)
            msg.positions = rows.ravel().tolist()
            msg.step = Duration(sec=0, nanosec=33_333_333)
            msg.header.stamp.sec, msg.header.stamp.nanosec = int(stamp), int(stamp % 1 * 1e9)
            chunk_pub.publish(msg)

        def on_diagnostics(msg: DiagnosticArray) -> None:
            for status in msg.status:
                for kv in status.values:
                    if kv.key == 'chunk_to_command_ms_p50_max':
                        latency[0] = kv.value

        node.create_subscription(JointState, 'joint_command', on_command, STATE_QOS)
        node.create_subscription(DiagnosticArray, 'diagnostics', on_diagnostics, STATE_QOS)
        state_pub = node.create_publisher(JointState, 'joint_states', STATE_QOS)
        chunk_pub = node.create_publisher(ActionChunk, 'vla/action_chunk', STATE_QOS)
        node.create_timer(0.01, publish_state)
        node.create_timer(0.25, publish_chunk)
        give_up = time.monotonic() + 60
        while len(arrivals) < 10 and time.monotonic() < give_up:
            rclpy.spin_once(node, timeout_sec=0.05)
        start = len(arrivals)
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            rclpy.spin_once(node, timeout_sec=0.05)
        node.destroy_node()
        rclpy.shutdown()
        controller.terminate()
        controller.wait(10)
    received = np.diff(arrivals[start:])
    stamped = np.diff(sent_stamps[start:])
    period = 1.0 / rate
    received_error = np.abs(received - period) * 1e3
    stamped_error = np.abs(stamped - period) * 1e3
    return {
        'rate': rate,
        'commands': len(received) + 1,
        'expected': seconds * rate,
        'received_p50_p99_max': [*np.percentile(received_error, [50, 99]), received_error.max()],
        'sent_p50_p99_max': [*np.percentile(stamped_error, [50, 99]), stamped_error.max()],
        'chunk_to_command_ms_p50_max': latency[0],
    }


# --- smoothness of the merge modes (core only) -------------------------------------------------


def reference(t: np.ndarray) -> np.ndarray:
    return 0.5 * np.sin(1.3 * t) + 0.2 * np.sin(3.1 * t + 0.5)


def chunk_stream(seconds: float, seed: int) -> list[tuple[float, float, np.ndarray]]:
    """(arrival, stamp, actions (30, 1)): a chunk every 0.25 s, 80-120 ms late, each with its
    own prediction error (offset and slope drift growing along the chunk)."""
    rng = np.random.default_rng(seed)
    stream = []
    for stamp in np.arange(0.0, seconds, 0.25):
        times = stamp + np.arange(1, 31) / 30.0
        offset, drift = rng.normal(0, 0.02), rng.normal(0, 0.05)
        actions = reference(times) + offset + drift * (times - stamp)
        stream.append((stamp + rng.uniform(0.08, 0.12), stamp, actions[:, None]))
    return stream


def run_merge(merge: str, stream, rate: float = 200.0, seconds: float = 10.0) -> dict:
    from vla_control.controller import Controller
    from vla_control.controller import ControllerConfig
    from vla_control.limits import JointLimits
    from vla_control.limits import PDGains
    from vla_control.schedule import ScheduleConfig

    limits = JointLimits(
        ('j',),
        np.array([-2.0]),
        np.array([2.0]),
        np.array([3.0]),
        np.array([30.0]),
        np.array([False]),
    )
    gains = PDGains(np.array([False]), np.zeros(1), np.zeros(1), np.zeros(1))
    config = ControllerConfig(rate_hz=rate, schedule=ScheduleConfig(merge=merge))
    controller = Controller(config, limits, gains)
    dt = 1.0 / rate
    ticks = np.arange(0.0, seconds, dt)
    controller.on_state(['j'], [reference(np.array([0.0]))[0]], [], 0.0)
    positions, targets, pending = [], [], list(stream)
    for t in ticks:
        while pending and pending[0][0] <= t:
            _, stamp, actions = pending.pop(0)
            controller.on_chunk(
                sequence=len(stream) - len(pending),
                stamp=stamp,
                step=1 / 30,
                joint_names=['j'],
                horizon=30,
                positions=actions.ravel(),
                now=t,
            )
        sampled = controller.schedule.sample(t)  # what the merge asks for, before the filter
        targets.append(np.nan if sampled is None else sampled[0][0])
        command = controller.step(t)
        positions.append(command.position[0])
        controller.on_state(['j'], [command.position[0]], [], t)
    q, target = np.array(positions), np.array(targets)
    settled = ticks > 1.0

    def worst(signal: np.ndarray, order: int) -> float:
        return float(np.nanmax(np.abs(np.diff(signal, order))[settled[order:]]) / dt**order)

    return {
        'ticks': ticks,
        'q': q,
        'target_accel': worst(target, 2),
        'target_jerk': worst(target, 3),
        'max_step_mrad': worst(q, 1) * dt * 1e3,
        'max_accel': worst(q, 2),
        'max_jerk': worst(q, 3),
        'rms_error_mrad': np.sqrt(np.mean((q - reference(ticks))[settled] ** 2)) * 1e3,
    }


def plot(results: dict, stream, path: Path) -> None:
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 1, figsize=(10, 7), sharex=True)
    window = (3.0, 4.5)
    for merge, result in results.items():
        ticks, q = result['ticks'], result['q']
        inside = (ticks >= window[0]) & (ticks <= window[1])
        axes[0].plot(ticks[inside], q[inside], label=merge)
        velocity = np.gradient(q, ticks)
        axes[1].plot(ticks[inside], velocity[inside], label=merge)
    fine = np.linspace(*window, 500)
    axes[0].plot(fine, reference(fine), 'k:', label='reference')
    for arrival, stamp, actions in stream:
        if window[0] <= arrival <= window[1]:
            for ax in axes:
                ax.axvline(arrival, color='0.85', zorder=0)
            times = stamp + np.arange(1, 31) / 30.0
            axes[0].plot(times, actions[:, 0], '.', color='0.6', markersize=3)
    axes[0].set_ylabel('command (rad)')
    axes[1].set_ylabel('velocity (rad/s)')
    axes[1].set_xlabel('time (s); grey lines: chunk arrivals, dots: chunk actions')
    axes[0].legend(loc='upper right')
    axes[0].set_title('Chunk merge modes at 200 Hz (chunks every 0.25 s, 80-120 ms late)')
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def main() -> int:
    args = parse_args()
    print(
        f'machine: {os.cpu_count()} cores {platform.machine()}, Python {platform.python_version()}'
    )
    if args.part in ('timing', 'both'):
        os.environ.setdefault('ROS_DOMAIN_ID', str(1 + os.getpid() % 100))
        os.environ.setdefault(
            'FASTDDS_DEFAULT_PROFILES_FILE', str(REPO / 'config' / 'dds' / 'fastdds_localhost.xml')
        )
        print(f'\ntiming over DDS ({args.seconds:g} s per rate), milliseconds')
        print(
            f'{"rate":>6} {"commands":>9} {"received |dt-T| p50/p99/max":>30} '
            f'{"sent |dt-T| p50/p99/max":>26} {"chunk->cmd p50/max":>19}'
        )
        for rate in args.rates:
            r = measure_timing(rate, args.seconds)
            received = '/'.join(f'{v:.3f}' for v in r['received_p50_p99_max'])
            sent = '/'.join(f'{v:.3f}' for v in r['sent_p50_p99_max'])
            print(
                f'{rate:6g} {r["commands"]:9d} {received:>30} {sent:>26} '
                f'{r["chunk_to_command_ms_p50_max"].replace(" ", "/"):>19}'
            )
    if args.part in ('smoothness', 'both'):
        stream = chunk_stream(10.0, args.seed)
        results = {m: run_merge(m, stream) for m in ('replace', 'crossfade', 'temporal_ensemble')}
        print('\nsmoothness (200 Hz, 40 chunks, 1 joint, limits 3 rad/s, 30 rad/s^2); max over')
        print('the run after 1 s: merged target before the safety filter | command sent')
        print(
            f'{"merge":18} {"target acc":>11} {"target jerk":>12} | {"step mrad":>9} '
            f'{"acc":>6} {"jerk":>7} {"RMS err mrad":>13}'
        )
        for merge, r in results.items():
            print(
                f'{merge:18} {r["target_accel"]:11.0f} {r["target_jerk"]:12.0f} | '
                f'{r["max_step_mrad"]:9.2f} {r["max_accel"]:6.1f} {r["max_jerk"]:7.0f} '
                f'{r["rms_error_mrad"]:13.2f}'
            )
        plot(results, stream, args.plot)
        print(f'plot: {args.plot}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
