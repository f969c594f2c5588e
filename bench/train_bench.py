"""Training throughput: `small_cpu` samples/s with and without the frozen-feature cache.

    source env.sh && python bench/train_bench.py                 # 20 episodes, 30 steps each
    python bench/train_bench.py --episodes 4 --steps 5           # a quick look
    python bench/train_bench.py --history outputs/so101_cubes/history.json --target 0.1

`--history` reads the history.json of a real `vla train` run instead (e.g. the 110-episode
SO-101 dataset of the end-to-end demo) and prints when the validation loss first reached each
`--target`: training seconds and steps (time to a fixed validation loss).

A synthetic SO-101 dataset (two 240x320 cameras, 60 frames per episode) is written with the
recorder's LeRobotDatasetWriter, then `vla train`'s Trainer runs `--steps` optimizer steps with
the vision features cached on disk (built once, timed separately) and with the frozen
EfficientNet-Lite0 run on every batch. Reported: samples/s (median of per-step rates), the
one-off cost of decoding the videos and of building the feature cache.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def write_dataset(root: Path, episodes: int, length: int = 60) -> Path:
    from vla_common.robot_config import load_robot_config
    from vla_teleop.dataset import DatasetSpec
    from vla_teleop.dataset import LeRobotDatasetWriter

    joints = tuple(load_robot_config('so101')['joints'])
    spec = DatasetSpec(30, joints, joints, {'front': (240, 320), 'wrist': (240, 320)}, 'so101')
    writer = LeRobotDatasetWriter(root, spec)
    rng = np.random.default_rng(0)
    for e in range(episodes):
        writer.start_episode(['pick up the red cube', 'pick up the blue cube'][e % 2])
        start = rng.uniform(-0.3, 0.3, len(joints))
        for t in range(length):
            image = rng.integers(0, 255, (240, 320, 3), dtype=np.uint8)
            state = start + 0.01 * t
            writer.add_frame(state, state + 0.01, {'front': image, 'wrist': image})
        writer.save_episode()
    return root


def run(dataset: Path, out: Path, steps: int, batch: int, cache: bool, threads: int):
    from vla_policy.train import Trainer
    from vla_policy.train_params import parse_arguments

    params = parse_arguments(
        [
            f'dataset:={dataset}',
            f'output:={out}',
            'preset:=small_cpu',
            f'steps:={steps}',
            f'batch_size:={batch}',
            f'feature_cache:={str(cache).lower()}',
            f'threads:={threads}',
            'val_every:=100000',
            'save_every:=100000',
            'val_fraction:=0.0',
        ]
    )
    started = time.perf_counter()
    trainer = Trainer(params)
    setup = time.perf_counter() - started
    rates = []
    for _ in range(steps):
        tick = time.perf_counter()
        trainer.model.train()
        batch = trainer.batch(trainer.train_episodes, trainer.generator, True)
        loss = trainer.loss(batch, trainer.generator)
        trainer.optimizer.zero_grad()
        loss.backward()
        trainer.optimizer.step()
        rates.append(batch / (time.perf_counter() - tick))
    return setup, float(np.median(rates))


def time_to_targets(history_path: Path, targets: list[float]) -> None:
    import json

    history = json.loads(history_path.read_text())
    val = history['val']  # [step, loss, training seconds]
    print(
        f'{history_path}: {len(val)} validations, final loss {val[-1][1]:.4f} at step '
        f'{val[-1][0]} ({val[-1][2] / 60:.1f} min of training)'
    )
    print()
    print('| validation loss <= | step | training time |')
    print('|---|---|---|')
    for target in targets:
        reached = next((v for v in val if v[1] <= target), None)
        when = f'{reached[0]} | {reached[2] / 60:.1f} min' if reached else 'not reached | -'
        print(f'| {target:g} | {when} |')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--episodes', type=int, default=20)
    parser.add_argument('--steps', type=int, default=30)
    parser.add_argument('--batch', type=int, default=16)
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--history', type=Path, help='history.json of a vla train run')
    parser.add_argument('--target', type=float, nargs='+', default=[0.2, 0.15, 0.1, 0.08])
    args = parser.parse_args()
    if args.history:
        time_to_targets(args.history, args.target)
        return
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        os.environ['VLA_CACHE_DIR'] = str(tmp / 'cache')
        dataset = write_dataset(tmp / 'dataset', args.episodes)
        frames = args.episodes * 60
        print(
            f'machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}'
            f', {args.threads} threads; {args.episodes} episodes, {frames} frames, 2 cameras'
        )
        print()
        print('| run | one-off setup | samples/s (median) |')
        print('|---|---|---|')
        setup, cached = run(dataset, tmp / 'a', args.steps, args.batch, True, args.threads)
        print(
            f'| feature cache, first run (decode videos + build cache) | {setup:.1f} s | '
            f'{cached:.1f} |'
        )
        setup, cached = run(dataset, tmp / 'b', args.steps, args.batch, True, args.threads)
        print(f'| feature cache, cache present | {setup:.1f} s | {cached:.1f} |')
        setup, raw = run(dataset, tmp / 'c', args.steps, args.batch, False, args.threads)
        print(f'| no feature cache (EfficientNet-Lite0 every batch) | {setup:.1f} s | {raw:.1f} |')
        print()
        print(f'speed-up of the feature cache: {cached / raw:.1f}x')


if __name__ == '__main__':
    main()
