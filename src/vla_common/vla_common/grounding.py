"""Grounding scenes: rendered images labelled with the grasp pose of every object they show.

A recorded episode labels one object per scene (the one it picked), so a model can learn the
scene instead of the words. Here each scene carries, for every object an instruction could
name, that instruction and the arm's joint targets at its grasp: the same image answers "red"
and "blue" differently, which only reading the colour word can explain. `vla grounding`
writes them from the simulation; `vla train grounding:=` teaches the goal token with them.

One .npz file (numpy only: written without torch, read without MuJoCo):
- `images` (S, cameras, H, W, 3) uint8 RGB, `cameras` (cameras,) their names
- `instructions` (S, K) str: the instruction naming object k of scene s
- `grasps` (S, K, joints) float32: joint targets (rad, m for ALOHA grippers) at that grasp
- `joint_names` (joints,) str, `seeds` (S,) int, `robot` and `task` str
- `rendered_shapes` (cameras, 2) int: (height, width) each camera rendered at before the resize
  to H x W; its aspect sets the field of view, which must be the dataset's (absent in files
  written before it was added)
"""

from __future__ import annotations

import os
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vla_common.errors import ConfigError

_ARRAYS = ('images', 'cameras', 'instructions', 'grasps', 'joint_names', 'seeds', 'robot', 'task')
_OPTIONAL = ('rendered_shapes',)


@dataclass
class GroundingScenes:
    robot: str
    task: str
    joint_names: list[str]
    cameras: list[str]
    images: np.ndarray
    instructions: np.ndarray
    grasps: np.ndarray
    seeds: np.ndarray
    rendered_shapes: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.instructions.ndim != 2:
            raise ConfigError(
                f'grounding scenes: instructions have shape {self.instructions.shape}, '
                'expected (scenes, objects)'
            )
        s, k = self.instructions.shape
        expected = {
            'images': (s, len(self.cameras), None, None, 3),
            'grasps': (s, k, len(self.joint_names)),
            'seeds': (s,),
        }
        if self.rendered_shapes is not None:
            expected['rendered_shapes'] = (len(self.cameras), 2)
        for name, shape in expected.items():
            actual = getattr(self, name).shape
            if len(actual) != len(shape) or any(
                want is not None and want != got for want, got in zip(shape, actual, strict=True)
            ):
                raise ConfigError(
                    f'grounding scenes: {name} has shape {actual}, expected {shape} '
                    f'(scenes, objects {k}, cameras {self.cameras}, joints {self.joint_names})'
                )
        if self.images.dtype != np.uint8:
            raise ConfigError(f'grounding scenes: images are {self.images.dtype}, not uint8')

    @property
    def image_size(self) -> tuple[int, int]:
        """(height, width) of the stored images."""
        return tuple(self.images.shape[2:4])

    def save(self, path: str | Path) -> Path:
        """Write atomically (through a temporary file), so a crash leaves no half file."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + '.tmp.npz')
        try:
            names = _ARRAYS + (_OPTIONAL if self.rendered_shapes is not None else ())
            np.savez(tmp, **{name: np.asarray(getattr(self, name)) for name in names})
            os.replace(tmp, path)
        except OSError:
            tmp.unlink(missing_ok=True)
            raise
        return path

    @classmethod
    def load(cls, path: str | Path) -> GroundingScenes:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f'{path}: no grounding scenes there (write them with vla grounding)')
        try:
            with np.load(path, allow_pickle=False) as files:
                arrays = {name: files[name] for name in _ARRAYS + _OPTIONAL if name in files}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
            raise ConfigError(f'{path}: cannot read grounding scenes ({exc})') from None
        missing = [name for name in _ARRAYS if name not in arrays]
        if missing:
            raise ConfigError(f'{path}: not grounding scenes, it has no {", ".join(missing)}')
        return cls(
            robot=str(arrays['robot']),
            task=str(arrays['task']),
            joint_names=[str(n) for n in arrays['joint_names']],
            cameras=[str(c) for c in arrays['cameras']],
            images=arrays['images'],
            instructions=arrays['instructions'].astype(str),
            grasps=arrays['grasps'].astype(np.float32),
            seeds=arrays['seeds'],
            rendered_shapes=arrays.get('rendered_shapes'),
        )
