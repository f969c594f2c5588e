"""Training data from a LeRobotDataset v3.0 directory (ours or LeRobot's), read directly.

Parquet through pyarrow, video through PyAV. Video frames are decoded once per dataset and
image size into a uint8 cache on disk (random access into mp4 is slow); with a frozen vision
encoder, its features are cached the same way, so CPU training never touches the encoder.
Every error names the file and the feature.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import av
import cv2
import numpy as np
import pyarrow.parquet as pq

from vla_common.errors import ConfigError
from vla_common.files import write_json

STATE, ACTION = 'observation.state', 'action'
IMAGE_PREFIX = 'observation.images.'


class DatasetError(ConfigError):
    """The dataset cannot be used for this policy; the message names the file and feature."""


@dataclass
class Episode:
    index: int
    length: int
    start: int
    """Row of its first frame in the concatenated data table."""
    videos: dict[str, tuple[Path, float]]
    """Camera -> (mp4, timestamp of the episode's first frame in it)."""


class LeRobotDataset:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        info_path = self.root / 'meta' / 'info.json'
        if not info_path.is_file():
            raise DatasetError(f'{self.root} is not a LeRobotDataset: no meta/info.json')
        try:
            self.info = json.loads(info_path.read_text())
        except ValueError as exc:
            raise DatasetError(f'{info_path}: malformed JSON ({exc})') from None
        version = self.info.get('codebase_version')
        if version != 'v3.0':
            raise DatasetError(f'{info_path}: codebase_version {version!r}, expected "v3.0"')
        self.fps = float(self.info['fps'])
        self.features = self.info.get('features', {})
        images = {k: v for k, v in self.features.items() if k.startswith(IMAGE_PREFIX)}
        stored = [k for k, v in images.items() if v.get('dtype') != 'video']
        if stored:  # LeRobot's use_videos=False: PNG images inside the parquet
            raise DatasetError(
                f'{info_path}: {", ".join(stored)} stored as images, not video; only video '
                'features are read (re-encode the dataset with videos)'
            )
        self.cameras = [k[len(IMAGE_PREFIX) :] for k in images]
        for key in (STATE, ACTION):
            if key not in self.features:
                raise DatasetError(f'{info_path}: the dataset has no {key!r} feature')
        self.state_names = self._names(STATE)
        self.action_names = self._names(ACTION)
        self.tasks = self._read_tasks()
        self._read_data()
        self.episodes = self._read_episodes()
        if not self.episodes:
            raise DatasetError(f'{self.root} has no episodes')

    def _names(self, key: str) -> list[str]:
        names = self.features[key].get('names')
        if isinstance(names, dict):  # some LeRobot datasets: {"motors": [...]}
            names = next(iter(names.values()))
        shape = self.features[key].get('shape', [0])
        return list(names) if names else [f'{key}_{i}' for i in range(shape[0])]

    def _read_tasks(self) -> list[str]:
        path = self.root / 'meta' / 'tasks.parquet'
        try:
            table = pq.read_table(path).to_pandas()
        except (OSError, ValueError) as exc:
            raise DatasetError(f'{path}: cannot read the tasks ({exc})') from None
        tasks = [''] * (int(table['task_index'].max()) + 1 if len(table) else 0)
        texts = table['task'] if 'task' in table.columns else table.index
        for text, index in zip(texts, table['task_index'], strict=True):
            tasks[int(index)] = str(text)
        return tasks

    def _read_data(self) -> None:
        files = sorted(self.root.glob('data/*/*.parquet'))
        if not files:
            raise DatasetError(f'{self.root}: no data/*/*.parquet files')
        columns = [STATE, ACTION, 'episode_index', 'frame_index', 'index', 'task_index']
        parts = []
        for path in files:
            try:
                parts.append(pq.read_table(path, columns=columns))
            except (OSError, ValueError, KeyError) as exc:
                raise DatasetError(f'{path}: cannot read {", ".join(columns)} ({exc})') from None
        import pyarrow as pa

        table = pa.concat_tables(parts).sort_by('index')
        self.states = np.asarray(table[STATE].to_pylist(), dtype=np.float32)
        self.actions = np.asarray(table[ACTION].to_pylist(), dtype=np.float32)
        self.episode_index = table['episode_index'].to_numpy()
        self.frame_index = table['frame_index'].to_numpy()
        self.task_index = table['task_index'].to_numpy()

    def _read_episodes(self) -> list[Episode]:
        rows = []
        for path in sorted(self.root.glob('meta/episodes/*/*.parquet')):
            try:
                rows.extend(pq.read_table(path).to_pylist())
            except (OSError, ValueError) as exc:
                raise DatasetError(f'{path}: cannot read the episode index ({exc})') from None
        starts = {}
        for row_number, episode in enumerate(self.episode_index):
            starts.setdefault(int(episode), row_number)
        episodes = []
        for row in sorted(rows, key=lambda r: r['episode_index']):
            index = int(row['episode_index'])
            if index not in starts:
                raise DatasetError(f'{self.root}: episode {index} has no rows in data/')
            videos = {}
            for camera in self.cameras:
                key = IMAGE_PREFIX + camera
                path = self.root / self.info['video_path'].format(
                    video_key=key,
                    chunk_index=row[f'videos/{key}/chunk_index'],
                    file_index=row[f'videos/{key}/file_index'],
                )
                videos[camera] = (path, float(row[f'videos/{key}/from_timestamp']))
            episodes.append(Episode(index, int(row['length']), starts[index], videos))
        return episodes

    # ----- what a policy needs -----

    def stats(self) -> dict[str, dict[str, np.ndarray]]:
        path = self.root / 'meta' / 'stats.json'
        try:
            stats = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise DatasetError(f'{path}: cannot read the statistics ({exc})') from None
        # Per-dimension statistics only ("count" is one number per feature).
        return {
            key: {
                k: np.asarray(v, dtype=np.float64) for k, v in stats[key].items() if k != 'count'
            }
            for key in (STATE, ACTION)
            if key in stats
        }

    def check_policy(self, joint_names: list[str], cameras: list[str]) -> None:
        """Raise DatasetError naming every feature the policy needs and the dataset lacks."""
        info = self.root / 'meta' / 'info.json'
        problems = []
        for key, names in ((STATE, self.state_names), (ACTION, self.action_names)):
            if names != list(joint_names):
                problems.append(f'{key} has names {names}, the policy needs {list(joint_names)}')
        missing = [IMAGE_PREFIX + c for c in cameras if c not in self.cameras]
        if missing:
            problems.append(f'no feature(s) {", ".join(missing)} (it has {self.cameras})')
        if problems:
            raise DatasetError(f'{info}: ' + '; '.join(problems))

    def camera_shape(self, camera: str) -> list[int]:
        return [int(v) for v in self.features[IMAGE_PREFIX + camera]['shape'][:2]]

    def episode_files(self) -> list[str]:
        """name:size:mtime of each episode metadata file, in order.

        It changes when episodes are rewritten and grows at the end when they are appended;
        a copy made with `cp -a` has the same.
        """
        return [
            f'{path.parent.name}/{path.name}:{path.stat().st_size}:{path.stat().st_mtime_ns}'
            for path in sorted(self.root.glob('meta/episodes/*/*.parquet'))
        ]

    def decode_episode(self, episode: Episode, camera: str, size: list[int]) -> np.ndarray:
        """(length, h, w, 3) uint8 frames of one episode and camera, resized to `size`."""
        path, start = episode.videos[camera]
        frames = np.zeros((episode.length, size[0], size[1], 3), np.uint8)
        seen = np.zeros(episode.length, bool)
        try:
            with av.open(str(path)) as container:
                stream = container.streams.video[0]
                if start > 0:  # LeRobot puts many episodes in one file: skip to this one
                    position = int(start / stream.time_base)
                    container.seek(position, stream=stream, backward=True, any_frame=False)
                for frame in container.decode(stream):
                    i = round((float(frame.time) - start) * self.fps)
                    if i < 0:
                        continue
                    if i >= episode.length:
                        break
                    rgb = frame.to_ndarray(format='rgb24')
                    frames[i] = cv2.resize(rgb, (size[1], size[0]), interpolation=cv2.INTER_AREA)
                    seen[i] = True
        except (OSError, av.FFmpegError) as exc:
            raise DatasetError(f'{path}: cannot decode {IMAGE_PREFIX + camera} ({exc})') from None
        if not seen.all():
            raise DatasetError(
                f'{path}: {IMAGE_PREFIX + camera} has {int(seen.sum())} of the '
                f'{episode.length} frames of episode {episode.index}'
            )
        return frames


def row_cache(
    dataset: LeRobotDataset,
    cache_dir: Path,
    kind: str,
    row_shape: tuple[int, ...],
    dtype,
    fill: Callable[[np.ndarray, int], None],
) -> np.ndarray:
    """(rows, *row_shape) memmap of something per data row, computed once and kept on disk.

    `fill(store, first)` writes rows `first`, ... to the end. When a cache of the same `kind`
    was made for this dataset's first episodes, or all of them (its episode files are a prefix
    of this dataset's, in this directory or the one it was copied from), its rows are reused:
    adding corrections to a copy of a dataset does not decode and encode it all again.
    """
    files = dataset.episode_files()
    digest = hashlib.sha256('\n'.join([str(dataset.root.resolve()), *files]).encode())
    path = Path(cache_dir) / f'{digest.hexdigest()[:16]}-{kind}.npy'
    if path.is_file():
        return np.load(path, mmap_mode='r')
    path.parent.mkdir(parents=True, exist_ok=True)
    shape = (len(dataset.states), *row_shape)
    starts = {episode.start for episode in dataset.episodes}
    reused, source = 0, None
    for manifest in path.parent.glob(f'*-{kind}.json'):
        try:
            earlier = json.loads(manifest.read_text())
            done, prefix = int(earlier['rows']), list(earlier['episode_files'])
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if (
            reused < done <= shape[0]
            and (done in starts or done == shape[0])  # ends where an episode starts, or all
            and files[: len(prefix)] == prefix
            and manifest.with_suffix('.npy').is_file()
        ):
            reused, source = done, manifest.with_suffix('.npy')
    partial = path.with_suffix('.partial.npy')
    store = np.lib.format.open_memmap(partial, mode='w+', dtype=dtype, shape=shape)
    if source is not None:
        store[:reused] = np.load(source, mmap_mode='r')[:reused]
        print(f'{kind}: {reused} rows from {source.name}, {shape[0] - reused} to compute')
    fill(store, reused)
    store.flush()
    del store
    partial.rename(path)
    write_json(path.with_suffix('.json'), {'rows': shape[0], 'episode_files': files})
    return np.load(path, mmap_mode='r')


def frame_cache(dataset: LeRobotDataset, cameras: list[str], size: list[int], cache_dir: Path):
    """(frames, cameras, h, w, 3) uint8 memmap of every frame, decoded once and kept on disk."""

    def decode(frames: np.ndarray, first: int) -> None:
        todo = [e for e in dataset.episodes if e.start >= first]
        for n, episode in enumerate(todo):
            for c, camera in enumerate(cameras):
                rows = slice(episode.start, episode.start + episode.length)
                frames[rows, c] = dataset.decode_episode(episode, camera, size)
            print(f'\rdecoding video: episode {n + 1}/{len(todo)}', end='', flush=True)
        print(flush=True)

    kind = f'{"-".join(cameras)}-{size[0]}x{size[1]}'
    shape = (len(cameras), size[0], size[1], 3)
    return row_cache(dataset, Path(cache_dir) / 'frames', kind, shape, np.uint8, decode)


def split_episodes(
    episodes: list[Episode], val_fraction: float, seed: int
) -> tuple[list[Episode], list[Episode]]:
    """Train/validation split by whole episodes (frames of one episode never straddle it).

    Each episode's side is drawn from (seed, its index) alone, so appending episodes (DAgger
    corrections, more recordings) leaves every earlier episode where it was: a fine-tune on the
    grown dataset never validates on what its starting checkpoint trained on. At least one
    episode trains, and one is held out when `val_fraction` > 0 and there are two.
    """
    keys = np.array([np.random.default_rng([seed, i]).random() for i in range(len(episodes))])
    held = keys < val_fraction
    if len(episodes) > 1 and val_fraction > 0 and not held.any():
        held[np.argmin(keys)] = True
    if held.all():
        held[np.argmax(keys)] = False
    return (
        [e for e, h in zip(episodes, held, strict=True) if not h],
        [e for e, h in zip(episodes, held, strict=True) if h],
    )


def chunk_rows(episode: Episode, frame: int, horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """Data rows of the next `horizon` actions from `frame` of `episode`, and which are real.

    Past the episode end the last action repeats (the robot holds) and the mask is False.
    """
    rows = np.arange(episode.start + frame, episode.start + frame + horizon)
    end = episode.start + episode.length
    return rows.clip(max=end - 1), rows < end


def relative_action_stats(
    states: np.ndarray,
    actions: np.ndarray,
    episodes: list[Episode],
    horizon: int,
    relative: list[bool],
) -> dict[str, np.ndarray]:
    """Statistics of chunk actions minus the state at capture, over every real chunk step.

    What a policy with relative actions learns to output (its `relative_action` normalisation);
    the joints not marked `relative` keep their absolute actions.
    """
    states = states * np.asarray(relative, dtype=states.dtype)
    steps = []
    for episode in episodes:
        for frame in range(episode.length):
            rows, real = chunk_rows(episode, frame, horizon)
            steps.append(actions[rows[real]] - states[episode.start + frame])
    values = np.concatenate(steps).astype(np.float64)
    q01, q10, q50, q90, q99 = np.quantile(values, [0.01, 0.1, 0.5, 0.9, 0.99], axis=0)
    return {
        'mean': values.mean(0),
        'std': values.std(0),
        'min': values.min(0),
        'max': values.max(0),
        'q01': q01,
        'q10': q10,
        'q50': q50,
        'q90': q90,
        'q99': q99,
    }


def next_grasp_rows(
    actions: np.ndarray, episodes: list[Episode], grippers: list[int]
) -> np.ndarray:
    """Per data row: the row where the episode next closes a gripper, else its last such row.

    A gripper closes where its command falls through the middle of that episode's range
    (commands close downward on both robots here), if that range is at least a quarter of the
    gripper's range over all episodes (a jittering gripper that stays open does not close). -1
    for episodes that never close one. The arm's pose at a grasp says which object the episode
    is about: the goal token's target.
    """
    goal = np.full(len(actions), -1, dtype=np.int64)
    spans = {g: np.ptp(actions[:, g]) if len(actions) else 0.0 for g in grippers}
    for episode in episodes:
        rows = np.arange(episode.start, episode.start + episode.length)
        closes: list[int] = []
        for g in grippers:
            command = actions[rows, g]
            middle = (command.max() + command.min()) / 2
            if np.ptp(command) > 0 and np.ptp(command) >= spans[g] / 4:
                falls = (command[:-1] > middle) & (command[1:] <= middle)
                closes += (np.flatnonzero(falls) + 1).tolist()
        if not closes:
            continue
        closes = np.unique(closes)
        upcoming = np.searchsorted(closes, np.arange(episode.length)).clip(max=len(closes) - 1)
        goal[rows] = episode.start + closes[upcoming]
    return goal
