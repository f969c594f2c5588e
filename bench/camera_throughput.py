"""Camera delivery benchmark: N camera node processes -> one subscriber process, over DDS.

    source env.sh && python bench/camera_throughput.py            # 3 x 640x480 @ 30 fps, 30 s

Each camera node publishes a moving test pattern; this process subscribes with the stack's image
QoS and measures, per camera, the frames delivered against the nominal rate (frames whose
capture stamps fall in the window, over window * fps) and the latency from capture stamp to the
subscriber callback (both on this machine's clock). Prints a table, optionally JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--cameras', type=int, default=3)
    parser.add_argument('--fps', type=float, default=30.0)
    parser.add_argument('--width', type=int, default=640)
    parser.add_argument('--height', type=int, default=480)
    parser.add_argument('--duration', type=float, default=30.0, help='measured seconds')
    parser.add_argument(
        '--warmup', type=float, default=2.0, help='seconds ignored after the first frames'
    )
    parser.add_argument(
        '--profile',
        default=str(Path(__file__).parents[1] / 'config' / 'dds' / 'fastdds_localhost.xml'),
        help='Fast DDS XML profile for every process; "none": builtin transports (--transport)',
    )
    parser.add_argument(
        '--transport',
        default='LARGE_DATA',
        help='FASTDDS_BUILTIN_TRANSPORTS when --profile none (LARGE_DATA, DEFAULT, SHM, UDPv4)',
    )
    parser.add_argument('--json', type=Path, help='also write the results here')
    return parser.parse_args()


def start_cameras(args: argparse.Namespace, workdir: Path) -> list[subprocess.Popen]:
    from vla_bringup.graph import NodeSpec
    from vla_bringup.runner import node_command

    processes = []
    for index in range(args.cameras):
        spec = NodeSpec(
            'vla_perception',
            'camera_node',
            f'bench_camera_{index}',
            {'name': f'cam{index}', 'fps': args.fps, 'width': args.width, 'height': args.height},
        )
        params = workdir / f'{spec.name}.yaml'
        params.write_text(yaml.safe_dump({'/**': {'ros__parameters': spec.parameters}}))
        with (workdir / f'{spec.name}.log').open('w') as log:  # the child keeps its own fd
            processes.append(
                subprocess.Popen(node_command(spec, params), stdout=log, stderr=subprocess.STDOUT)
            )
    return processes


def measure(args: argparse.Namespace) -> dict:
    import rclpy
    from sensor_msgs.msg import Image

    from vla_common.qos import IMAGE_QOS

    rclpy.init()
    node = rclpy.create_node('camera_benchmark')
    samples: dict[str, list[tuple[float, float]]] = {f'cam{i}': [] for i in range(args.cameras)}

    def callback_for(name: str):
        def on_image(msg: Image) -> None:
            arrival = time.time()
            stamp = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
            samples[name].append((stamp, arrival))

        return on_image

    for name in samples:
        node.create_subscription(Image, f'camera/{name}/image_raw', callback_for(name), IMAGE_QOS)
    # Discovery takes seconds: the window opens `warmup` after every camera has delivered.
    give_up = time.time() + 60.0
    while not all(samples.values()) and time.time() < give_up:
        rclpy.spin_once(node, timeout_sec=0.1)
    if not all(samples.values()):
        silent = [name for name, pairs in samples.items() if not pairs]
        raise SystemExit(f'no frames from {", ".join(silent)} within 60 s')
    start = time.time()
    window = (start + args.warmup, start + args.warmup + args.duration)
    while time.time() < window[1] + 0.5:
        rclpy.spin_once(node, timeout_sec=0.1)
    node.destroy_node()
    rclpy.shutdown()

    results = {}
    for name, pairs in samples.items():
        inside = np.array([(s, a) for s, a in pairs if window[0] <= s < window[1]]).reshape(-1, 2)
        latency_ms = (inside[:, 1] - inside[:, 0]) * 1e3
        expected = args.duration * args.fps
        gaps = int(np.sum(np.diff(inside[:, 0]) > 1.5 / args.fps)) if len(inside) > 1 else 0
        results[name] = {
            'received': len(inside),
            'expected': expected,
            'delivered_pct': 100.0 * len(inside) / expected,
            'gaps': gaps,
            'latency_p50_ms': float(np.percentile(latency_ms, 50)) if len(inside) else None,
            'latency_p99_ms': float(np.percentile(latency_ms, 99)) if len(inside) else None,
            'latency_max_ms': float(latency_ms.max()) if len(inside) else None,
        }
    return results


def main() -> int:
    args = parse_args()
    os.environ['FASTDDS_BUILTIN_TRANSPORTS'] = args.transport
    if args.profile == 'none':
        os.environ.pop('FASTDDS_DEFAULT_PROFILES_FILE', None)
    else:
        os.environ['FASTDDS_DEFAULT_PROFILES_FILE'] = args.profile
    os.environ.setdefault('ROS_DOMAIN_ID', str(1 + os.getpid() % 100))
    with tempfile.TemporaryDirectory(prefix='vla_bench_') as tmp:
        cameras = start_cameras(args, Path(tmp))
        try:
            results = measure(args)
        finally:
            for process in cameras:
                process.terminate()
            for process in cameras:
                process.wait(10)

    transport = args.transport if args.profile == 'none' else Path(args.profile).name
    print(
        f'{args.cameras} cameras x {args.width}x{args.height} rgb8 @ {args.fps:g} fps, '
        f'{args.duration:g} s, transport {transport}, {os.cpu_count()} cores '
        f'{platform.machine()}, Python {platform.python_version()}'
    )
    print(
        f'{"camera":8} {"received":>9} {"delivered":>10} {"gaps":>5} {"p50 ms":>8} '
        f'{"p99 ms":>8} {"max ms":>8}'
    )
    for name, r in results.items():
        if r['received'] == 0:
            print(f'{name:8} {0:9d} {0.0:9.1f}% {"-":>5} {"-":>8} {"-":>8} {"-":>8}')
            continue
        print(
            f'{name:8} {r["received"]:9d} {r["delivered_pct"]:9.1f}% {r["gaps"]:5d} '
            f'{r["latency_p50_ms"]:8.2f} {r["latency_p99_ms"]:8.2f} {r["latency_max_ms"]:8.2f}'
        )
    total = sum(r['received'] for r in results.values())
    expected = sum(r['expected'] for r in results.values())
    print(f'total delivered: {100.0 * total / expected:.1f}% ({total}/{expected:g})')
    if args.json:
        args.json.write_text(
            json.dumps(
                {'args': vars(args) | {'json': str(args.json)}, 'results': results}, indent=2
            )
        )
    return 0


if __name__ == '__main__':
    sys.exit(main())
