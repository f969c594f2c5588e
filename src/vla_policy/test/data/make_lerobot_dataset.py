"""Regenerate the `lerobot_v30/` fixture with the real LeRobot library (not with our writer).

The fixture is a LeRobotDataset v3.0 written by `lerobot==0.4.4`'s own recording API
(`LeRobotDataset.create`, `add_frame`, `save_episode`, `finalize`), so that
`test_lerobot_made_dataset.py` can check that our reader (`vla_policy.data.LeRobotDataset`)
reads what LeRobot writes. The test itself runs without LeRobot; only this script needs it.

LeRobot does not go into the project's venv (it pins torch<2.11 and pulls in ~8 GB). Make an
isolated environment outside the repository, as this fixture was made:

    python3.11 -m venv /work/lerobot_env
    PIP_CONSTRAINT= /work/lerobot_env/bin/pip install lerobot==0.4.4 torch==2.10.0 \\
        torchvision==0.25.0 torchcodec==0.10.0
    /work/lerobot_env/bin/python src/vla_policy/test/data/make_lerobot_dataset.py

(`PIP_CONSTRAINT=` lifts this machine's local torch<=2.14 cap file; torch 2.10.0 is the newest
LeRobot 0.4.4 accepts.) Versions the committed fixture was made with: lerobot 0.4.4, torch
2.10.0, torchcodec 0.10.0, av 15.1.0, datasets 4.8.5, pyarrow 26.0.1, pandas 3.1.1, numpy 2.2.6,
Python 3.11.7. Video codec: LeRobot's default, `libsvtav1` (AV1), yuv420p, g=2, crf=30.

Content (deterministic; the test recomputes it with the same functions' formulas):
  - 3 episodes of LENGTHS frames at 30 fps, tasks TASKS[e];
  - observation.state[j] = 0.1 * e + 0.01 * t + 0.001 * j, action = state + 0.005 (float32),
    joints JOINTS;
  - observation.images.front: 48x64 RGB, solid FRONT_COLOURS[e], rows 2t and 2t+1 white;
    observation.images.wrist: solid WRIST_COLOURS[e], rows 46-2t and 47-2t white.
LeRobot 0.4.4 appends every episode to the same data parquet file and the same mp4 per camera
(data/chunk-000/file-000.parquet, videos/<key>/chunk-000/file-000.mp4), so episodes 1 and 2
start at a non-zero `from_timestamp` in their video file.

Usage: make_lerobot_dataset.py [OUTPUT_DIR]   (default: lerobot_v30/ beside this file;
an existing output directory is replaced).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

FPS = 30
HEIGHT, WIDTH = 48, 64
JOINTS = ['shoulder_pan', 'shoulder_lift', 'elbow_flex', 'wrist_flex', 'wrist_roll', 'gripper']
LENGTHS = [20, 24, 18]
TASKS = ['pick up the red cube', 'pick up the blue cube', 'pick up the red cube']
FRONT_COLOURS = [(200, 40, 40), (40, 40, 200), (40, 160, 40)]
WRIST_COLOURS = [(120, 120, 40), (40, 120, 120), (120, 40, 120)]
ROBOT_TYPE = 'so101'
REPO_ID = 'local/vla_stack_lerobot_v30_fixture'


def state(episode: int, t: int) -> np.ndarray:
    return (0.1 * episode + 0.01 * t + 0.001 * np.arange(len(JOINTS))).astype(np.float32)


def action(episode: int, t: int) -> np.ndarray:
    return (state(episode, t) + np.float32(0.005)).astype(np.float32)


def front_row(t: int) -> int:
    """First of the two white rows of the front image at frame t."""
    return (2 * t) % HEIGHT


def wrist_row(t: int) -> int:
    return HEIGHT - 2 - (2 * t) % HEIGHT


def image(colour: tuple[int, int, int], row: int) -> np.ndarray:
    rgb = np.empty((HEIGHT, WIDTH, 3), np.uint8)
    rgb[:] = colour
    rgb[row : row + 2] = 255
    return rgb


def features() -> dict:
    camera = {
        'dtype': 'video',
        'shape': (HEIGHT, WIDTH, 3),
        'names': ['height', 'width', 'channels'],
    }
    vector = {'dtype': 'float32', 'shape': (len(JOINTS),), 'names': list(JOINTS)}
    return {
        'observation.state': dict(vector),
        'action': dict(vector),
        'observation.images.front': dict(camera),
        'observation.images.wrist': dict(camera),
    }


def main(output: Path) -> None:
    # No network here: never try the Hub, and keep `datasets`' cache out of the home directory.
    os.environ.setdefault('HF_HUB_OFFLINE', '1')
    cache = tempfile.mkdtemp(prefix='hf-cache-')
    os.environ.setdefault('HF_HOME', cache)
    os.environ.setdefault('HF_DATASETS_CACHE', str(Path(cache) / 'datasets'))
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    work = Path(tempfile.mkdtemp(prefix='lerobot-fixture-'))
    root = work / 'dataset'  # create() wants a directory that does not exist yet
    dataset = LeRobotDataset.create(
        repo_id=REPO_ID,
        root=root,
        fps=FPS,
        features=features(),
        robot_type=ROBOT_TYPE,
        use_videos=True,
    )
    for e, length in enumerate(LENGTHS):
        for t in range(length):
            dataset.add_frame(
                {
                    'observation.state': state(e, t),
                    'action': action(e, t),
                    'observation.images.front': image(FRONT_COLOURS[e], front_row(t)),
                    'observation.images.wrist': image(WRIST_COLOURS[e], wrist_row(t)),
                    'task': TASKS[e],
                }
            )
        dataset.save_episode()
    dataset.finalize()

    leftovers = [p for p in root.iterdir() if p.name not in ('data', 'meta', 'videos')]
    for path in leftovers:  # empty images/ directories of the PNG frames LeRobot encodes from
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    if output.exists():
        shutil.rmtree(output)
    shutil.copytree(root, output)
    shutil.rmtree(work)
    shutil.rmtree(cache, ignore_errors=True)
    total = sum(p.stat().st_size for p in output.rglob('*') if p.is_file())
    print(f'wrote {output} ({total} bytes):')
    for path in sorted(p for p in output.rglob('*') if p.is_file()):
        print(f'  {path.relative_to(output)}  {path.stat().st_size}')


if __name__ == '__main__':
    default = Path(__file__).resolve().parent / 'lerobot_v30'
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else default)
