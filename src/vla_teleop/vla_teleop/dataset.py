"""LeRobotDataset v3.0 writer (pyarrow + PyAV), loadable by LeRobot's own loader unchanged.

Layout (design section 6), one file of each kind per episode so that a saved episode is never
rewritten:

    meta/info.json, meta/stats.json, meta/tasks.parquet
    meta/episodes/chunk-CCC/file-FFF.parquet      one row: episode FFF + 1000 * CCC
    data/chunk-CCC/file-FFF.parquet               that episode's frames
    videos/<key>/chunk-CCC/file-FFF.mp4           that episode's frames of camera <key>

Crash safety: an episode is written into `.staging/`, moved into place, and only then counted
in info.json (written atomically). Opening a dataset removes staged leftovers and any file of
an episode info.json does not count, so `kill -9` loses at most the episode being recorded.
A full disk: everything a save writes (the episode's files and the new tasks, stats and
info.json) is written into `.staging/` first; only then is it renamed into place, info.json
last. A save that fails leaves the dataset, on disk and in this writer, as it was before.
Video is encoded while recording, by one thread per camera, so stopping an episode only waits
for the last few frames.
"""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import threading
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from vla_common.files import write_json

CODEBASE_VERSION = 'v3.0'
CHUNKS_SIZE = 1000
DATA_PATH = 'data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet'
VIDEO_PATH = 'videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4'
EPISODES_PATH = 'meta/episodes/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet'
QUANTILES = (0.01, 0.10, 0.50, 0.90, 0.99)
INDEX_FEATURES = ('frame_index', 'episode_index', 'index', 'task_index')


class DatasetError(RuntimeError):
    """The dataset directory or an episode cannot be written as asked; the message says why."""


@dataclass(frozen=True)
class DatasetSpec:
    """What every frame holds: joint vectors by name and camera images of a fixed size."""

    fps: int
    state_names: tuple[str, ...]
    action_names: tuple[str, ...]
    cameras: dict[str, tuple[int, int]] = field(default_factory=dict)  # name -> (height, width)
    robot_type: str | None = None
    codec: str = 'libx264'
    gop: int = 2  # small GOP: training samples random frames, decoding must seek cheaply
    crf: int = 23

    def image_key(self, camera: str) -> str:
        return f'observation.images.{camera}'


def _location(episode: int) -> dict[str, int]:
    return {'chunk_index': episode // CHUNKS_SIZE, 'file_index': episode % CHUNKS_SIZE}


class VideoEncoder:
    """Encodes one camera's frames to mp4 in a background thread (pts = frame number / fps)."""

    def __init__(
        self,
        path: Path,
        fps: float,
        height: int,
        width: int,
        codec: str = 'libx264',
        gop: int = 2,
        crf: int = 23,
    ):
        import av

        self.path = path
        self.height, self.width = height, width
        self._container = av.open(str(path), mode='w')
        self._stream = self._container.add_stream(codec, rate=round(fps))
        self._stream.width, self._stream.height = width, height
        self._stream.pix_fmt = 'yuv420p'
        self._stream.options = {'g': str(gop), 'crf': str(crf)}
        if codec == 'libx264':
            self._stream.options['preset'] = 'veryfast'
        self._queue: queue.Queue = queue.Queue(maxsize=120)
        self._error: Exception | None = None
        self.frames = 0
        self._thread = threading.Thread(target=self._encode, daemon=True)
        self._thread.start()

    def add(self, rgb: np.ndarray) -> None:
        if self._error is not None:
            raise DatasetError(f'video encoding failed for {self.path.name}: {self._error}')
        try:  # never block the caller (a ROS callback) for long
            self._queue.put(rgb, timeout=2.0)
        except queue.Full:
            raise DatasetError(f'the video encoder of {self.path.name} cannot keep up') from None

    def _encode(self) -> None:
        import av

        finished = False
        try:
            while (rgb := self._queue.get()) is not None:
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format='rgb24')
                frame.pts = self.frames
                for packet in self._stream.encode(frame):
                    self._container.mux(packet)
                self.frames += 1
            finished = True
            for packet in self._stream.encode():
                self._container.mux(packet)
        except Exception as exc:
            self._error = exc
            while not finished and self._queue.get() is not None:  # let add() and close() go on
                pass
        finally:
            try:
                self._container.close()  # writes the index: a failure here is a broken file
            except Exception as exc:
                self._error = self._error or exc

    def close(self) -> int:
        """Finish the file; returns the number of frames encoded."""
        self._queue.put(None)
        self._thread.join(timeout=60.0)
        if self._thread.is_alive():
            raise DatasetError(f'the video encoder of {self.path.name} did not finish')
        if self._error is not None:
            raise DatasetError(f'video encoding failed for {self.path.name}: {self._error}')
        return self.frames


def vector_stats(values: np.ndarray) -> dict[str, np.ndarray]:
    """LeRobot's per-feature statistics of an (N, D) array."""
    values = values.reshape(len(values), -1)
    stats = {
        'min': values.min(axis=0),
        'max': values.max(axis=0),
        'mean': values.mean(axis=0, dtype=np.float64),
        'std': values.std(axis=0, dtype=np.float64),
        'count': np.array([len(values)]),
    }
    for q in QUANTILES:
        stats[f'q{round(q * 100):02d}'] = np.quantile(values, q, axis=0)
    return stats


def image_stats(frames: list[np.ndarray]) -> dict[str, np.ndarray]:
    """Per-channel statistics in [0, 1], shaped (3, 1, 1) as LeRobot's normalizer expects.

    `frames` are the sampled (and downsampled) frames of one episode.
    """
    pixels = np.stack(frames).reshape(-1, 3).astype(np.float64) / 255.0
    stats = vector_stats(pixels)
    shaped = {key: value.reshape(3, 1, 1) for key, value in stats.items() if key != 'count'}
    shaped['count'] = np.array([len(frames)])
    return shaped


def aggregate(all_stats: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Combine per-episode stats: count-weighted means, pooled variance, extreme min/max."""
    counts = np.array([s['count'][0] for s in all_stats], dtype=np.float64)
    weights = counts / counts.sum()

    def weighted(key):
        return sum(w * s[key] for w, s in zip(weights, all_stats, strict=True))

    mean = weighted('mean')
    variance = sum(
        w * (s['std'] ** 2 + (s['mean'] - mean) ** 2)
        for w, s in zip(weights, all_stats, strict=True)
    )
    result = {
        'min': np.min([s['min'] for s in all_stats], axis=0),
        'max': np.max([s['max'] for s in all_stats], axis=0),
        'mean': mean,
        'std': np.sqrt(variance),
        'count': np.array([int(counts.sum())]),
    }
    for q in QUANTILES:
        key = f'q{round(q * 100):02d}'
        result[key] = weighted(key)
    return result


class EpisodeBuffer:
    """The frames of the episode being recorded; videos are encoded as frames arrive."""

    def __init__(self, writer: LeRobotDatasetWriter, episode: int, task: str):
        self.writer, self.episode, self.task = writer, episode, task
        self.states: list[np.ndarray] = []
        self.actions: list[np.ndarray] = []
        self.stat_frames: dict[str, list[np.ndarray]] = {c: [] for c in writer.spec.cameras}
        self.staging = writer.root / '.staging' / f'episode-{episode:06d}'
        self.staging.mkdir(parents=True, exist_ok=True)
        self.encoders: dict[str, VideoEncoder] = {}
        try:
            for camera, size in writer.spec.cameras.items():
                path = self.staging / f'{camera}.mp4'
                spec = writer.spec
                self.encoders[camera] = VideoEncoder(
                    path, spec.fps, *size, codec=spec.codec, gop=spec.gop, crf=spec.crf
                )
        except Exception as exc:  # e.g. the codec is missing: stop the ones already running
            for encoder in self.encoders.values():
                try:
                    encoder.close()
                except DatasetError:
                    pass
            raise DatasetError(f'cannot start video encoding: {exc}') from exc

    def __len__(self) -> int:
        return len(self.states)


class LeRobotDatasetWriter:
    """Create or append to a dataset; `start_episode`, `add_frame`, then save or discard."""

    def __init__(self, root: str | Path, spec: DatasetSpec):
        self.root = Path(root)
        self.spec = spec
        self._episode: EpisodeBuffer | None = None
        self.root.mkdir(parents=True, exist_ok=True)
        info_path = self.root / 'meta' / 'info.json'
        if info_path.is_file():
            self.info = self._check_existing(info_path)
        else:
            if any(p.name != '.staging' for p in self.root.iterdir()):
                raise DatasetError(f'{self.root} is not empty and has no meta/info.json')
            self.info = self._new_info()
            # Counted from the start: a crash during the first save leaves a dataset that
            # reopens (and repairs) like any other, not a directory without info.json.
            (self.root / 'meta').mkdir(exist_ok=True)
            write_json(info_path, self.info)
        self.tasks: list[str] = self._read_tasks()
        self._repair()

    # --- dataset level --------------------------------------------------------------------

    def _features(self) -> dict[str, Any]:
        spec = self.spec
        features: dict[str, Any] = {
            'observation.state': {
                'dtype': 'float32',
                'shape': [len(spec.state_names)],
                'names': list(spec.state_names),
            },
            'action': {
                'dtype': 'float32',
                'shape': [len(spec.action_names)],
                'names': list(spec.action_names),
            },
        }
        codec_names = {'libx264': 'h264', 'libsvtav1': 'av1', 'libx265': 'hevc'}
        for camera, (height, width) in spec.cameras.items():
            features[spec.image_key(camera)] = {
                'dtype': 'video',
                'shape': [height, width, 3],
                'names': ['height', 'width', 'channels'],
                'info': {
                    'video.height': height,
                    'video.width': width,
                    'video.codec': codec_names.get(spec.codec, spec.codec),
                    'video.pix_fmt': 'yuv420p',
                    'video.is_depth_map': False,
                    'video.fps': spec.fps,
                    'video.channels': 3,
                    'has_audio': False,
                },
            }
        features['timestamp'] = {'dtype': 'float32', 'shape': [1], 'names': None}
        for name in INDEX_FEATURES:
            features[name] = {'dtype': 'int64', 'shape': [1], 'names': None}
        return features

    def _new_info(self) -> dict[str, Any]:
        return {
            'codebase_version': CODEBASE_VERSION,
            'robot_type': self.spec.robot_type,
            'total_episodes': 0,
            'total_frames': 0,
            'total_tasks': 0,
            'chunks_size': CHUNKS_SIZE,
            'data_files_size_in_mb': 100,
            'video_files_size_in_mb': 200,
            'fps': self.spec.fps,
            'splits': {},
            'data_path': DATA_PATH,
            'video_path': VIDEO_PATH if self.spec.cameras else None,
            'features': self._features(),
        }

    def _check_existing(self, info_path: Path) -> dict[str, Any]:
        try:
            info = json.loads(info_path.read_text())
        except json.JSONDecodeError as exc:
            raise DatasetError(f'{info_path} is not valid JSON: {exc}') from None
        version = info.get('codebase_version')
        if version != CODEBASE_VERSION:
            raise DatasetError(
                f'{self.root} is a LeRobot dataset of version {version}, not {CODEBASE_VERSION}: '
                'convert it with LeRobot, or record into a new directory'
            )
        expected = self._features()
        if info.get('fps') != self.spec.fps or info.get('features') != expected:
            raise DatasetError(
                f'{self.root} was recorded with other features or fps (fps {info.get("fps")}, '
                f'features {sorted(info.get("features", {}))}); record into a new directory'
            )
        return info

    def _repair(self) -> None:
        """Drop what an interrupted run left, then make tasks and stats match again.

        Removed: staged episodes, temporary files, and the files of any episode that
        info.json does not count.
        """
        shutil.rmtree(self.root / '.staging', ignore_errors=True)
        for leftover in self.root.glob('meta/*.tmp'):
            leftover.unlink()
        total = self.info['total_episodes']
        removed = False
        for pattern in ('data/*/*.parquet', 'meta/episodes/*/*.parquet', 'videos/*/*/*.mp4'):
            for path in self.root.glob(pattern):
                chunk = re.fullmatch(r'chunk-(\d+)', path.parent.name)
                number = re.fullmatch(r'file-(\d+)', path.stem)
                if chunk and number and int(chunk[1]) * CHUNKS_SIZE + int(number[1]) >= total:
                    path.unlink()
                    removed = True
        if removed or len(self.tasks) != self.info['total_tasks']:
            used = []
            for path in sorted(self.root.glob('meta/episodes/*/*.parquet')):
                for row in pq.read_table(path, columns=['tasks']).to_pylist():
                    used.extend(t for t in row['tasks'] if t not in used)
            self.tasks = [t for t in self.tasks if t in used]
            if total:
                self._write_tasks()
                self._write_stats()

    def _read_tasks(self) -> list[str]:
        path = self.root / 'meta' / 'tasks.parquet'
        if not path.is_file():
            return []
        table = pq.read_table(path).to_pandas()
        return list(table.sort_values('task_index').index)

    @property
    def total_episodes(self) -> int:
        return self.info['total_episodes']

    # --- episodes -------------------------------------------------------------------------

    def start_episode(self, task: str) -> int:
        if self._episode is not None:
            raise DatasetError('an episode is already being recorded: save or discard it first')
        if not task.strip():
            raise DatasetError('an episode needs a task (the language instruction)')
        self._episode = EpisodeBuffer(self, self.total_episodes, task)
        return self._episode.episode

    @property
    def recording(self) -> bool:
        return self._episode is not None

    def add_frame(
        self, state: np.ndarray, action: np.ndarray, images: dict[str, np.ndarray]
    ) -> None:
        episode = self._require_episode()
        spec = self.spec
        state = np.asarray(state, dtype=np.float32)
        action = np.asarray(action, dtype=np.float32)
        if state.shape != (len(spec.state_names),) or action.shape != (len(spec.action_names),):
            raise DatasetError(
                f'state {state.shape} / action {action.shape} do not match the dataset '
                f'({len(spec.state_names)},) / ({len(spec.action_names)},)'
            )
        if set(images) != set(spec.cameras):
            raise DatasetError(
                f'frame has cameras {sorted(images)}, expected {sorted(spec.cameras)}'
            )
        for camera, image in images.items():
            if image.shape != (*spec.cameras[camera], 3) or image.dtype != np.uint8:
                raise DatasetError(
                    f'camera {camera}: {image.shape} {image.dtype} is not '
                    f'{(*spec.cameras[camera], 3)} uint8'
                )
        for camera, image in images.items():
            episode.encoders[camera].add(image)
            if len(episode) % max(1, spec.fps // 2) == 0:  # 2 small frames a second for stats
                episode.stat_frames[camera].append(image[::4, ::4].copy())
        episode.states.append(state)
        episode.actions.append(action)

    def discard_episode(self) -> None:
        episode = self._require_episode()
        self._episode = None
        for encoder in episode.encoders.values():
            try:
                encoder.close()
            except DatasetError:
                pass
        shutil.rmtree(episode.staging, ignore_errors=True)

    def save_episode(self) -> int:
        """Write the episode; returns its number of frames. An empty episode is an error."""
        episode = self._require_episode()
        self._episode = None
        try:
            return self._save(episode)
        except OSError as exc:  # disk full, permissions: nothing counted, nothing saved lost
            raise DatasetError(f'episode not saved: {exc}') from exc
        finally:
            shutil.rmtree(episode.staging, ignore_errors=True)

    def _require_episode(self) -> EpisodeBuffer:
        if self._episode is None:
            raise DatasetError('no episode is being recorded')
        return self._episode

    def _save(self, episode: EpisodeBuffer) -> int:
        length = len(episode)
        frame_counts, errors = {}, []
        for camera, encoder in episode.encoders.items():  # close every one, even after an error
            try:
                frame_counts[camera] = encoder.close()
            except DatasetError as exc:
                errors.append(str(exc))
        if errors:
            raise DatasetError('; '.join(errors))
        if length == 0:
            raise DatasetError('the episode has no frames: nothing saved')
        for camera, count in frame_counts.items():
            if count != length:
                raise DatasetError(f'camera {camera} encoded {count} frames for {length} rows')
        # The writer's own state (tasks, info) changes only once the episode is committed.
        tasks = self.tasks if episode.task in self.tasks else [*self.tasks, episode.task]
        task_index = tasks.index(episode.task)
        index = episode.episode
        start = self.info['total_frames']
        columns = {
            'observation.state': np.stack(episode.states),
            'action': np.stack(episode.actions),
            'timestamp': (np.arange(length) / self.spec.fps).astype(np.float32),
            'frame_index': np.arange(length, dtype=np.int64),
            'episode_index': np.full(length, index, dtype=np.int64),
            'index': np.arange(start, start + length, dtype=np.int64),
            'task_index': np.full(length, task_index, dtype=np.int64),
        }
        stats = {name: vector_stats(values) for name, values in columns.items()}
        for camera, frames in episode.stat_frames.items():
            stats[self.spec.image_key(camera)] = image_stats(frames)
        location = _location(index)
        # 1. the episode's files, staged then moved into place
        data_path = self.root / DATA_PATH.format(**location)
        staged_data = episode.staging / 'data.parquet'
        pq.write_table(self._data_table(columns), staged_data)
        moves = [(staged_data, data_path)]
        row: dict[str, Any] = {
            'episode_index': index,
            'tasks': [episode.task],
            'length': length,
            'data/chunk_index': location['chunk_index'],
            'data/file_index': location['file_index'],
            'dataset_from_index': start,
            'dataset_to_index': start + length,
        }
        for camera in self.spec.cameras:
            key = self.spec.image_key(camera)
            path = self.root / VIDEO_PATH.format(video_key=key, **location)
            moves.append((episode.encoders[camera].path, path))
            row[f'videos/{key}/chunk_index'] = location['chunk_index']
            row[f'videos/{key}/file_index'] = location['file_index']
            row[f'videos/{key}/from_timestamp'] = 0.0
            row[f'videos/{key}/to_timestamp'] = length / self.spec.fps
        for feature, values in stats.items():
            for name, value in values.items():
                row[f'stats/{feature}/{name}'] = value.tolist()
        row['meta/episodes/chunk_index'] = location['chunk_index']
        row['meta/episodes/file_index'] = location['file_index']
        staged_meta = episode.staging / 'episode.parquet'
        pq.write_table(pa.Table.from_pylist([row]), staged_meta)
        moves.append((staged_meta, self.root / EPISODES_PATH.format(**location)))
        # 2. the dataset's metadata with the episode counted, staged too
        info = {
            **self.info,
            'total_episodes': index + 1,
            'total_frames': start + length,
            'total_tasks': len(tasks),
            'splits': {'train': f'0:{index + 1}'},
        }
        meta = self.root / 'meta'
        self._write_tasks(tasks, staged=episode.staging / 'tasks.parquet')
        self._write_stats([row], staged=episode.staging / 'stats.json')
        (episode.staging / 'info.json').write_text(json.dumps(info, indent=2))
        # 3. into place (renames: no space needed); info.json last, which counts the episode
        moved: list[Path] = []
        try:
            for source, target in moves:
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(source, target)
                moved.append(target)
            for name in ('tasks.parquet', 'stats.json', 'info.json'):
                os.replace(episode.staging / name, meta / name)
        except OSError:
            for target in moved:  # not counted: as if never written
                target.unlink(missing_ok=True)
            raise
        self.tasks, self.info = tasks, info
        return length

    def _data_table(self, columns: dict[str, np.ndarray]) -> pa.Table:
        arrays, fields = [], []
        for name, values in columns.items():
            if values.ndim == 2:
                flat = pa.array(values.astype(np.float32).ravel(), type=pa.float32())
                array = pa.FixedSizeListArray.from_arrays(flat, values.shape[1])
            else:
                array = pa.array(values)
            arrays.append(array)
            fields.append(pa.field(name, array.type))
        return pa.Table.from_arrays(arrays, schema=pa.schema(fields))

    def _write_tasks(self, tasks: list[str] | None = None, staged: Path | None = None) -> None:
        """meta/tasks.parquet of `tasks` (default: the writer's), or only `staged` if given."""
        import pandas as pd

        tasks = self.tasks if tasks is None else tasks
        path = self.root / 'meta' / 'tasks.parquet'
        path.parent.mkdir(parents=True, exist_ok=True)
        frame = pd.DataFrame(
            {'task_index': np.arange(len(tasks), dtype=np.int64)}, index=pd.Index(tasks)
        )
        tmp = staged or path.with_suffix('.tmp')
        try:
            frame.to_parquet(tmp)
            if staged is None:
                os.replace(tmp, path)
        except OSError:
            tmp.unlink(missing_ok=True)
            raise

    def _write_stats(self, new_rows: list[dict] = (), staged: Path | None = None) -> None:
        """meta/stats.json: the stats of the counted episodes and of `new_rows`, aggregated.

        Per-episode stats are in the episodes' metadata rows. Written to `staged` only, if given.
        """
        total = self.info['total_episodes']
        rows = []
        for path in sorted(self.root.glob('meta/episodes/*/*.parquet')):
            rows.extend(r for r in pq.read_table(path).to_pylist() if r['episode_index'] < total)
        rows.extend(new_rows)
        per_feature: dict[str, list[dict[str, np.ndarray]]] = {}
        for row in rows:
            episode: dict[str, dict[str, np.ndarray]] = {}
            for column, value in row.items():
                if column.startswith('stats/'):
                    feature, name = column[len('stats/') :].rsplit('/', 1)
                    episode.setdefault(feature, {})[name] = np.asarray(value)
            for feature, values in episode.items():
                per_feature.setdefault(feature, []).append(values)
        result = {
            f: {k: v.tolist() for k, v in aggregate(e).items()} for f, e in per_feature.items()
        }
        if staged is not None:
            staged.write_text(json.dumps(result, indent=2))
        else:
            write_json(self.root / 'meta' / 'stats.json', result)
