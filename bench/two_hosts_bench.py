"""What the hop between robot PC and GPU box costs: chunks and camera frames across a veth link.

    sudo -E bash -c 'source env.sh && python bench/two_hosts_bench.py'       # 30 s per phase
    ... python bench/two_hosts_bench.py --quick                               # a few s: smoke run

Two network namespaces joined by a veth pair stand for the two hosts (the setup of
src/vla_policy/test/test_two_hosts.py, reused from there; needs root and iproute2). Every
process uses config/dds/fastdds_two_hosts.xml unless --profile says otherwise. Phases:

1. chunks: sim_node (robot namespace, cameras front + wrist at the policy's 640x480) and
   policy_node (gpu namespace; untrained `--preset`, or `--checkpoint`). A subscriber in the gpu
   namespace (same host as the policy) and one in the robot namespace (across the link) record
   every vla/action_chunk. Reported: stamp -> arrival on each side (stamp = capture time of the
   observation, so this includes inference) and the hop itself, arrival across the link minus
   arrival on the policy's host, per chunk.
2. images: sim_node alone, one camera, rgb8 at 640x480 and then downscaled at the source
   (--small, 320x240 by default: what a camera node set to that size, or a resize node before
   the link, would send). A subscriber on the same host and one across the link, both with the
   stack's image QoS (best effort, depth 2). Reported: frames/s, delivered (frames across the
   link / frames seen on the sim's own host, matched by capture stamp), latency p50/p99.

All clocks are this machine's clock. Prints tables, optionally JSON (--json).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--duration', type=float, default=30.0, help='measured seconds per phase')
    parser.add_argument('--warmup', type=float, default=3.0, help='seconds ignored at the start')
    parser.add_argument('--quick', action='store_true', help='smoke run: 3 s phases, 1 s warmup')
    parser.add_argument('--fps', type=float, default=30.0, help='camera rate of the image phase')
    parser.add_argument('--chunk-fps', type=float, default=15.0, help='camera rate, chunk phase')
    parser.add_argument('--small', default='320x240', help='downscaled size WxH of phase 2')
    parser.add_argument('--preset', default='tiny', help='untrained policy preset (no checkpoint)')
    parser.add_argument('--checkpoint', default='', help='policy checkpoint (its robot: so101)')
    parser.add_argument('--replan', type=float, default=0.25, help='policy replan_period_s')
    parser.add_argument(
        '--phases', default='chunks,images', help='comma-separated: chunks, images'
    )
    parser.add_argument(
        '--profile',
        default=str(ROOT / 'config' / 'dds' / 'fastdds_two_hosts.xml'),
        help='Fast DDS XML profile for every process; "none": builtin transports (--transport)',
    )
    parser.add_argument(
        '--transport',
        default='LARGE_DATA',
        help='FASTDDS_BUILTIN_TRANSPORTS when --profile none (LARGE_DATA, DEFAULT, UDPv4)',
    )
    parser.add_argument('--json', type=Path, help='also write the results here')
    parser.add_argument(
        '--probe', nargs=3, metavar=('KIND', 'DIR', 'NAME'), help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.duration, args.warmup = 3.0, 1.0
    return args


# --- subscriber process (run inside a namespace) --------------------------------------------


def probe(kind: str, directory: Path, name: str) -> int:
    """Record (stamp, arrival, ...) of every message until DIR/stop exists; write DIR/NAME.json.

    Writes DIR/NAME.ready at the first message. kind: chunks (vla/action_chunk) or images
    (camera/front/image_raw).
    """
    import rclpy
    from rclpy.executors import ExternalShutdownException

    from vla_common.qos import IMAGE_QOS
    from vla_common.qos import STATE_QOS

    rclpy.init()
    node = rclpy.create_node(f'bench_probe_{name}')
    samples: list[list[float]] = []

    def stamp_of(msg) -> float:
        return msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9

    if kind == 'chunks':
        from vla_msgs.msg import ActionChunk

        def on_chunk(msg) -> None:
            samples.append([time.time(), stamp_of(msg), msg.sequence, msg.inference_ms])

        node.create_subscription(ActionChunk, 'vla/action_chunk', on_chunk, STATE_QOS)
    else:
        from sensor_msgs.msg import Image

        def on_image(msg) -> None:
            samples.append([time.time(), stamp_of(msg), msg.width, msg.height])

        node.create_subscription(Image, 'camera/front/image_raw', on_image, IMAGE_QOS)
    stop, ready = directory / 'stop', directory / f'{name}.ready'
    try:
        while not stop.exists():
            rclpy.spin_once(node, timeout_sec=0.05)
            if samples and not ready.exists():
                ready.touch()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    (directory / f'{name}.json').write_text(json.dumps(samples))
    node.destroy_node()
    rclpy.try_shutdown()
    return 0


# --- the phases ----------------------------------------------------------------------------


def make_hosts(workdir: Path, args: argparse.Namespace):
    """The two namespaces of test_two_hosts.py, with processes logged to `workdir`."""
    sys.path.insert(0, str(ROOT))
    from conftest import NodeProcess  # the repository's conftest, before the test folder's

    sys.path.insert(0, str(ROOT / 'src' / 'vla_policy' / 'test'))
    from test_two_hosts import TwoHosts

    def run_command(argv, name, env):
        return NodeProcess(argv, workdir / f'{name}.log', env)

    hosts = TwoHosts(workdir, run_command)
    if args.profile == 'none':
        for variable in ('FASTDDS_DEFAULT_PROFILES_FILE', 'FASTRTPS_DEFAULT_PROFILES_FILE'):
            os.environ.pop(variable, None)
        hosts.environment = {'FASTDDS_BUILTIN_TRANSPORTS': args.transport}
    else:
        name = 'FASTRTPS' if os.environ.get('ROS_DISTRO') == 'humble' else 'FASTDDS'
        hosts.environment = {f'{name}_DEFAULT_PROFILES_FILE': args.profile}
    hosts.create()
    return hosts


def run_phase(hosts, args: argparse.Namespace, kind: str, nodes, workdir: Path):
    """Start `nodes` and a probe on each side; return ({side: samples}, (t0, t1) window)."""
    workdir.mkdir(parents=True, exist_ok=True)
    first = len(hosts.processes)
    for host, package, executable, params in nodes:
        hosts.start_node(host, package, executable, params)
    # `same`: the publisher's own host (policy: gpu, sim: robot); `across`: the other one.
    same = 'gpu' if kind == 'chunks' else 'robot'
    sides = {'same': same, 'across': 'robot' if same == 'gpu' else 'gpu'}
    for side, host in sides.items():
        command = [sys.executable, __file__, '--probe', kind, str(workdir), side]
        hosts.start(host, f'{kind}_probe_{side}', command)
    give_up = time.time() + 90.0
    while not all((workdir / f'{side}.ready').exists() for side in sides):
        for process in hosts.processes[first:]:
            if process.process.poll() is not None:
                raise SystemExit(f'{process.log_path.name} exited:\n{process.output[-3000:]}')
        if time.time() > give_up:
            raise SystemExit(f'no {kind} on both sides within 90 s:\n{hosts.logs()}')
        time.sleep(0.2)
    start = time.time() + args.warmup
    window = (start, start + args.duration)
    time.sleep(args.warmup + args.duration + 0.5)
    (workdir / 'stop').touch()
    for process in hosts.processes[first:]:
        if 'probe' in process.log_path.name:
            process.wait_exit(20)
    for process in hosts.processes[first:]:
        process.stop()
    samples = {side: json.loads((workdir / f'{side}.json').read_text()) for side in sides}
    return samples, window


def percentiles(values_s) -> dict:
    values = np.asarray(values_s, float) * 1e3
    if not len(values):
        return {'p50_ms': None, 'p99_ms': None, 'max_ms': None}
    return {
        'p50_ms': float(np.percentile(values, 50)),
        'p99_ms': float(np.percentile(values, 99)),
        'max_ms': float(values.max()),
    }


def chunk_phase(hosts, args: argparse.Namespace, workdir: Path) -> dict:
    from vla_common.robot_config import load_robot_config

    cameras = load_robot_config('so101')['cameras']
    first = next(iter(cameras.values()))
    sim = {
        'cameras': list(cameras),
        'width': int(first['width']),
        'height': int(first['height']),
        'camera_fps': args.chunk_fps,
    }
    policy = {'replan_period_s': args.replan, 'threads': 1, 'preset': args.preset}
    if args.checkpoint:
        policy['checkpoint'] = args.checkpoint
    nodes = [
        ('robot', 'vla_sim', 'sim_node', sim),
        ('gpu', 'vla_policy', 'policy_node', policy),
    ]
    samples, (t0, t1) = run_phase(hosts, args, 'chunks', nodes, workdir)
    by_side = {
        side: {int(s[2]): s for s in rows if t0 <= s[0] < t1} for side, rows in samples.items()
    }
    common = sorted(set(by_side['same']) & set(by_side['across']))
    result = {'chunks_same': len(by_side['same']), 'chunks_across': len(by_side['across'])}
    for side in ('same', 'across'):
        result[f'stamp_to_arrival_{side}'] = percentiles(
            [s[0] - s[1] for s in by_side[side].values()]
        )
    result['hop'] = percentiles([by_side['across'][q][0] - by_side['same'][q][0] for q in common])
    inference = [s[3] for s in by_side['same'].values()]
    result['inference_ms_p50'] = float(np.median(inference)) if inference else None
    result['sim_size'] = f'{sim["width"]}x{sim["height"]} x {len(cameras)} cameras'
    return result


def image_phase(hosts, args: argparse.Namespace, width: int, height: int, workdir: Path) -> dict:
    sim = {'cameras': ['front'], 'width': width, 'height': height, 'camera_fps': args.fps}
    nodes = [('robot', 'vla_sim', 'sim_node', sim)]
    samples, (t0, t1) = run_phase(hosts, args, 'images', nodes, workdir)
    inside = {
        side: {round(s[1], 6): s for s in rows if t0 <= s[1] < t1}
        for side, rows in samples.items()
    }
    same, across = inside['same'], inside['across']
    duration = t1 - t0
    return {
        'size': f'{width}x{height}',
        'frames_same': len(same),
        'frames_across': len(across),
        'fps_same': len(same) / duration,
        'fps_across': len(across) / duration,
        'delivered_pct': 100.0 * len(set(same) & set(across)) / len(same) if same else 0.0,
        'latency_same': percentiles([s[0] - s[1] for s in same.values()]),
        'latency_across': percentiles([s[0] - s[1] for s in across.values()]),
    }


def fmt(stats: dict) -> str:
    if stats['p50_ms'] is None:
        return '-'
    return f'{stats["p50_ms"]:.2f} / {stats["p99_ms"]:.2f} / {stats["max_ms"]:.2f}'


def main() -> int:
    args = parse_args()
    if args.probe:
        kind, directory, name = args.probe
        return probe(kind, Path(directory), name)
    if os.geteuid() != 0:
        raise SystemExit('needs root: network namespaces (sudo -E, with env.sh sourced)')
    os.environ.setdefault('ROS_DOMAIN_ID', str(1 + os.getpid() % 100))
    os.environ.setdefault('MUJOCO_GL', 'egl')
    small = tuple(int(v) for v in args.small.lower().split('x'))
    phases = [p.strip() for p in args.phases.split(',') if p.strip()]
    results: dict = {}
    with tempfile.TemporaryDirectory(prefix='vla_two_hosts_') as tmp:
        workdir = Path(tmp)
        hosts = make_hosts(workdir, args)
        try:
            if 'chunks' in phases:
                results['chunks'] = chunk_phase(hosts, args, workdir / 'chunks')
            if 'images' in phases:
                results['images'] = [
                    image_phase(hosts, args, 640, 480, workdir / 'images_full'),
                    image_phase(hosts, args, small[0], small[1], workdir / 'images_small'),
                ]
        finally:
            hosts.close()

    transport = args.transport if args.profile == 'none' else Path(args.profile).name
    print(
        f'two hosts = two network namespaces + veth, transport {transport}, '
        f'{args.duration:g} s per phase, {os.cpu_count()} cores {platform.machine()}, '
        f'Python {platform.python_version()}'
    )
    if 'chunks' in results:
        c = results['chunks']
        print(
            f'\nchunks (policy {args.checkpoint or args.preset}, sim {c["sim_size"]}, '
            f'inference p50 {c["inference_ms_p50"] or 0:.1f} ms): '
            f'{c["chunks_same"]} on the policy host, {c["chunks_across"]} across'
        )
        print(f'{"":34} {"p50 / p99 / max ms":>24}')
        print(f'{"stamp -> arrival, policy host":34} {fmt(c["stamp_to_arrival_same"]):>24}')
        print(f'{"stamp -> arrival, across the link":34} {fmt(c["stamp_to_arrival_across"]):>24}')
        print(f'{"hop (across - policy host)":34} {fmt(c["hop"]):>24}')
    if 'images' in results:
        print(f'\nimages (rgb8, camera_fps {args.fps:g}, best effort depth 2)')
        print(
            f'{"size":9} {"fps same":>9} {"fps across":>11} {"delivered":>10} '
            f'{"latency same p50/p99/max ms":>29} {"across p50/p99/max ms":>25}'
        )
        for r in results['images']:
            print(
                f'{r["size"]:9} {r["fps_same"]:9.1f} {r["fps_across"]:11.1f} '
                f'{r["delivered_pct"]:9.1f}% {fmt(r["latency_same"]):>29} '
                f'{fmt(r["latency_across"]):>25}'
            )
    if args.json:
        args.json.write_text(
            json.dumps(
                {'args': {**vars(args), 'json': str(args.json)}, 'results': results}, indent=2
            )
        )
    return 0


if __name__ == '__main__':
    sys.exit(main())
