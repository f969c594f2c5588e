"""Manual check: does the real LeRobot library load a dataset written by OUR writer?

Direction B of the LeRobot interoperability check (direction A, LeRobot-made data read by our
reader, is the unit test src/vla_policy/test/test_lerobot_made_dataset.py). This script writes
a small dataset with `vla_teleop.dataset.LeRobotDatasetWriter` and opens it with
`lerobot.datasets.lerobot_dataset.LeRobotDataset(repo_id='local/x', root=...)`, then compares
what LeRobot returns (states, actions, indices, tasks, decoded video frames, stats, action
chunks with `delta_timestamps`) with what was written. Finally LeRobot appends one episode to
our dataset and both readers reopen it. Every check prints PASS or FAIL; the exit status is
the number of failures.

It needs LeRobot, which does not go into the project's venv. Run it in an isolated one:

    python3.11 -m venv /work/lerobot_env
    PIP_CONSTRAINT= /work/lerobot_env/bin/pip install lerobot==0.4.4 torch==2.10.0 \\
        torchvision==0.25.0 torchcodec==0.10.0
    /work/lerobot_env/bin/python bench/lerobot_compat.py [--keep DIR] [--codec libx264]

Our packages are imported from this checkout (src/vla_teleop, src/vla_common, src/vla_policy):
they need only numpy, pyarrow, pandas, av and opencv, which LeRobot brings. No network: the Hub
is switched off (HF_HUB_OFFLINE=1) and `datasets`' cache goes to a temporary directory.
Last run: lerobot 0.4.4, torch 2.10.0, torchcodec 0.10.0, torchvision 0.25.0, av 15.1.0,
datasets 4.8.5, pyarrow 26.0.1, pandas 3.1.1, numpy 2.2.6, Python 3.11.7.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import sys
import tempfile
import traceback
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
for package in ('vla_teleop', 'vla_common', 'vla_policy'):
    sys.path.insert(0, str(REPO / 'src' / package))

_CACHE = tempfile.mkdtemp(prefix='hf-cache-')
os.environ.setdefault('HF_HUB_OFFLINE', '1')
os.environ.setdefault('HF_HOME', _CACHE)
os.environ.setdefault('HF_DATASETS_CACHE', str(Path(_CACHE) / 'datasets'))

import numpy as np  # noqa: E402

# The content (joints, tasks, lengths, images) of the LeRobot-made fixture, so both directions
# use the same data.
_spec = importlib.util.spec_from_file_location(
    'make_lerobot_dataset', REPO / 'src/vla_policy/test/data/make_lerobot_dataset.py'
)
gen = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gen)
CAMERAS = {
    'front': (gen.FRONT_COLOURS, gen.front_row),
    'wrist': (gen.WRIST_COLOURS, gen.wrist_row),
}
STARTS = np.cumsum([0, *gen.LENGTHS[:-1]]).tolist()

TOLERANCE = 30  # codec error allowed away from the white band (h264 crf 23: up to 20 seen)
failures: list[str] = []


def check(name: str, condition: bool, detail: str = '') -> bool:
    print(f'{"PASS" if condition else "FAIL"}  {name}{f"  ({detail})" if detail else ""}')
    if not condition:
        failures.append(name)
    return condition


def attempt(name: str, function):
    """Run one step; a raised exception is a FAIL with its traceback, and returns None."""
    try:
        return function()
    except Exception as exc:
        check(name, False, f'{type(exc).__name__}: {exc}')
        traceback.print_exc(limit=-4)
        return None


def write_ours(root: Path, codec: str) -> Path:
    from vla_teleop.dataset import DatasetSpec
    from vla_teleop.dataset import LeRobotDatasetWriter

    spec = DatasetSpec(
        fps=gen.FPS,
        state_names=tuple(gen.JOINTS),
        action_names=tuple(gen.JOINTS),
        cameras={'front': (gen.HEIGHT, gen.WIDTH), 'wrist': (gen.HEIGHT, gen.WIDTH)},
        robot_type=gen.ROBOT_TYPE,
        codec=codec,
    )
    writer = LeRobotDatasetWriter(root, spec)
    for e, length in enumerate(gen.LENGTHS):
        writer.start_episode(gen.TASKS[e])
        for t in range(length):
            writer.add_frame(
                gen.state(e, t),
                gen.action(e, t),
                {
                    'front': gen.image(gen.FRONT_COLOURS[e], gen.front_row(t)),
                    'wrist': gen.image(gen.WRIST_COLOURS[e], gen.wrist_row(t)),
                },
            )
        writer.save_episode()
    return root


def frame_error(chw, episode: int, t: int, camera: str) -> tuple[int, int]:
    """(largest error away from the white band, darkest band pixel) of a LeRobot video frame."""
    colours, row_of = CAMERAS[camera]
    rgb = (chw.permute(1, 2, 0).numpy() * 255).round().astype(int)
    expected = gen.image(colours[episode], row_of(t)).astype(int)
    row = row_of(t)
    far = np.ones(gen.HEIGHT, bool)
    far[max(0, row - 2) : row + 4] = False
    return int(np.abs(rgb[far] - expected[far]).max()), int(rgb[row : row + 2].min())


def check_items(dataset, label: str) -> None:
    """Index frames of every episode (first, middle, last) and compare with what was written."""
    for e, (start, length) in enumerate(zip(STARTS, gen.LENGTHS, strict=True)):
        for t in (0, length // 2, length - 1):
            index = start + t
            item = attempt(f'{label}: dataset[{index}]', lambda i=index: dataset[i])
            if item is None:
                continue
            where = f'{label}: frame {index} (episode {e}, t={t})'
            ok = (
                np.array_equal(item['observation.state'].numpy(), gen.state(e, t))
                and np.array_equal(item['action'].numpy(), gen.action(e, t))
                and item['observation.state'].dtype.is_floating_point
                and int(item['episode_index']) == e
                and int(item['frame_index']) == t
                and int(item['index']) == index
                and abs(float(item['timestamp']) - t / gen.FPS) < 1e-6
                and item['task'] == gen.TASKS[e]
            )
            check(f'{where}: state, action, indices, timestamp, task', ok)
            for camera in CAMERAS:
                frame = item.get(f'observation.images.{camera}')
                if not check(
                    f'{where}: {camera} video frame shape',
                    frame is not None and tuple(frame.shape) == (3, gen.HEIGHT, gen.WIDTH),
                    'missing' if frame is None else str(tuple(frame.shape)),
                ):
                    continue
                far, band = frame_error(frame, e, t, camera)
                check(
                    f'{where}: {camera} colour and moving row',
                    far <= TOLERANCE and band >= 200,
                    f'max error off the band {far}, darkest band pixel {band}',
                )


def check_with_lerobot(root: Path) -> None:
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    dataset = attempt(
        'LeRobotDataset(repo_id, root) opens our dataset',
        lambda: LeRobotDataset(repo_id='local/x', root=root),
    )
    if dataset is None:
        return
    check('it opens', True, f'video backend {dataset.video_backend}')
    meta = dataset.meta
    total = sum(gen.LENGTHS)
    check(
        'meta: total_episodes / total_frames / len()',
        (meta.total_episodes, meta.total_frames, len(dataset)) == (3, total, total),
        f'{meta.total_episodes}, {meta.total_frames}, {len(dataset)}',
    )
    check('meta: fps, robot_type', (meta.fps, meta.robot_type) == (gen.FPS, gen.ROBOT_TYPE))
    check(
        'meta: video_keys',
        meta.video_keys == ['observation.images.front', 'observation.images.wrist'],
        str(meta.video_keys),
    )
    check('meta: names', meta.names['observation.state'] == gen.JOINTS)
    check(
        'meta: tasks',
        list(meta.tasks.index) == ['pick up the red cube', 'pick up the blue cube'],
        str(meta.tasks),
    )
    lengths = [meta.episodes[i]['length'] for i in range(len(meta.episodes))]
    froms = [meta.episodes[i]['dataset_from_index'] for i in range(len(meta.episodes))]
    check(
        'meta: episode lengths and dataset_from_index',
        (lengths, froms) == (gen.LENGTHS, STARTS),
        f'{lengths} {froms}',
    )
    paths = [str(meta.get_video_file_path(e, 'observation.images.front')) for e in range(3)]
    check('meta: one video file per episode (our layout)', len(set(paths)) == 3, str(paths))
    stats = meta.stats or {}
    states = np.stack([gen.state(e, t) for e, n in enumerate(gen.LENGTHS) for t in range(n)])
    s = stats.get('observation.state', {})
    check(
        'stats: observation.state mean/std/min/max/quantiles',
        all(k in s for k in ('mean', 'std', 'min', 'max', 'count', 'q01', 'q99'))
        and np.allclose(s['mean'], states.mean(0), atol=1e-6)
        and np.allclose(s['std'], states.std(0), atol=1e-5)
        and np.asarray(s['count']).tolist() == [total],
        str(sorted(s)),
    )
    image = stats.get('observation.images.front', {})
    check(
        'stats: image stats shaped (3, 1, 1) in [0, 1]',
        np.asarray(image.get('mean')).shape == (3, 1, 1)
        and np.asarray(image['min']).min() >= 0
        and np.asarray(image['max']).max() <= 1,
        str({k: np.asarray(v).shape for k, v in image.items()}),
    )
    check(
        'stats: every feature LeRobot normalises has stats',
        all(k in stats for k in ('observation.state', 'action', *meta.video_keys)),
        str(sorted(stats)),
    )

    check_items(dataset, f'LeRobot[{dataset.video_backend}]')
    if dataset.video_backend != 'pyav':
        pyav = attempt(
            'open with video_backend="pyav"',
            lambda: LeRobotDataset(repo_id='local/x', root=root, video_backend='pyav'),
        )
        if pyav is not None:
            check_items(pyav, 'LeRobot[pyav]')

    # What training does: action chunks and a past frame, padded at episode ends.
    dt = 1 / gen.FPS
    chunked = attempt(
        'open with delta_timestamps',
        lambda: LeRobotDataset(
            repo_id='local/x',
            root=root,
            delta_timestamps={
                'action': [i * dt for i in range(8)],
                'observation.images.front': [-dt, 0.0],
            },
        ),
    )
    if chunked is not None:
        e, t = 1, gen.LENGTHS[1] - 3
        item = attempt('delta_timestamps: item', lambda: chunked[STARTS[1] + t])
        if item is not None:
            expected = np.stack([gen.action(e, min(t + i, gen.LENGTHS[1] - 1)) for i in range(8)])
            check(
                'delta_timestamps: action chunk clamped to the episode, is_pad after its end',
                np.array_equal(item['action'].numpy(), expected)
                and item['action_is_pad'].tolist() == [False] * 3 + [True] * 5,
            )
            frames = item['observation.images.front']
            errors = [frame_error(frames[k], e, t - 1 + k, 'front') for k in range(2)]
            check(
                'delta_timestamps: previous and current video frame',
                tuple(frames.shape) == (2, 3, gen.HEIGHT, gen.WIDTH)
                and all(f <= TOLERANCE and b >= 200 for f, b in errors),
                str(errors),
            )
        first = attempt('delta_timestamps: first frame', lambda: chunked[STARTS[2]])
        if first is not None:
            check(
                'delta_timestamps: frame before the episode start is padded',
                first['observation.images.front_is_pad'].tolist() == [True, False],
            )


def check_append(root: Path) -> None:
    """LeRobot records one more episode into our dataset; LeRobot and our reader reopen it."""
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    from vla_policy.data import LeRobotDataset as OurReader

    def append():
        dataset = LeRobotDataset(repo_id='local/x', root=root, vcodec='h264')
        for t in range(10):
            dataset.add_frame(
                {
                    'observation.state': gen.state(3, t),
                    'action': gen.action(3, t),
                    'observation.images.front': gen.image(gen.FRONT_COLOURS[0], gen.front_row(t)),
                    'observation.images.wrist': gen.image(gen.WRIST_COLOURS[0], gen.wrist_row(t)),
                    'task': 'pick up the green cube',
                }
            )
        dataset.save_episode()
        dataset.finalize()
        return True

    if attempt('append: LeRobot records an episode into our dataset', append) is None:
        return
    check('append: LeRobot records an episode into our dataset', True)
    reopened = attempt(
        'append: LeRobot reopens it', lambda: LeRobotDataset(repo_id='local/x', root=root)
    )
    if reopened is not None:
        item = reopened[sum(gen.LENGTHS) + 4]
        far, band = frame_error(item['observation.images.front'], 0, 4, 'front')
        check(
            'append: LeRobot reads the appended episode',
            reopened.meta.total_episodes == 4
            and item['task'] == 'pick up the green cube'
            and np.array_equal(item['observation.state'].numpy(), gen.state(3, 4))
            and far <= TOLERANCE
            and band >= 200,
            f'{far} {band}',
        )
    ours = attempt('append: our reader reopens it', lambda: OurReader(root))
    if ours is not None:
        episode = ours.episodes[3]
        frames = ours.decode_episode(episode, 'front', [gen.HEIGHT, gen.WIDTH])
        check(
            'append: our reader reads the appended episode',
            len(ours.episodes) == 4
            and episode.length == 10
            and np.array_equal(ours.states[episode.start + 4], gen.state(3, 4))
            and frames[4, gen.front_row(4)].min() >= 200,
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--keep', type=Path, help='write the dataset here and keep it')
    parser.add_argument('--codec', default='libx264', help="our writer's codec (DatasetSpec)")
    parser.add_argument('--no-append', action='store_true', help='skip the append check')
    args = parser.parse_args()
    import av
    import datasets
    import lerobot
    import torch

    print(
        f'lerobot {lerobot.__version__}, torch {torch.__version__}, av {av.__version__}, '
        f'datasets {datasets.__version__}, numpy {np.__version__}'
    )
    work = Path(tempfile.mkdtemp(prefix='lerobot-compat-'))
    root = args.keep or work / 'ours'
    if root.exists():
        shutil.rmtree(root)
    try:
        if attempt('our writer writes the dataset', lambda: write_ours(root, args.codec)) is None:
            return 1
        print(f'dataset: {root}')
        check_with_lerobot(root)
        if not args.no_append:
            check_append(root)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(_CACHE, ignore_errors=True)
    print(f'\n{len(failures)} failed' + (f': {failures}' if failures else ''))
    return len(failures)


if __name__ == '__main__':
    sys.exit(main())
