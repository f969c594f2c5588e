"""Mesh simplification for fast CPU rendering, done once per mesh and cached on disk.

The SO-101 model on PyPI has 320k triangles; llvmpipe renders it at ~20 fps. Decimated to a
few thousand triangles per part it renders 5x faster and looks the same at camera resolution.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

_STL_RECORD = np.dtype([('normal', '<f4', 3), ('vertices', '<f4', (3, 3)), ('attribute', '<u2')])


def cache_dir() -> Path:
    """$VLA_CACHE_DIR/meshes, else ~/.cache/vla_stack/meshes."""
    root = os.environ.get('VLA_CACHE_DIR') or Path.home() / '.cache' / 'vla_stack'
    return Path(root) / 'meshes'


def read_stl(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Vertices (V, 3) and triangles (F, 3) of a binary STL, shared vertices merged."""
    data = Path(path).read_bytes()
    count = int.from_bytes(data[80:84], 'little')
    if len(data) != 84 + count * _STL_RECORD.itemsize:
        raise ValueError(f'{path}: not a binary STL (ASCII STL is not supported)')
    records = np.frombuffer(data, dtype=_STL_RECORD, count=count, offset=84)
    corners = records['vertices'].reshape(-1, 3)
    vertices, index = np.unique(corners, axis=0, return_inverse=True)
    return vertices.astype(np.float64), index.reshape(-1, 3)


def write_stl(path: str | Path, vertices: np.ndarray, faces: np.ndarray) -> None:
    triangles = vertices[faces].astype(np.float32)
    normals = np.cross(triangles[:, 1] - triangles[:, 0], triangles[:, 2] - triangles[:, 0])
    normals /= np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)
    records = np.zeros(len(faces), dtype=_STL_RECORD)
    records['normal'] = normals
    records['vertices'] = triangles
    tmp = Path(f'{path}.tmp{os.getpid()}')
    tmp.write_bytes(b'\0' * 80 + len(faces).to_bytes(4, 'little') + records.tobytes())
    tmp.replace(path)  # atomic: a concurrent reader never sees half a file


def cluster_vertices(
    vertices: np.ndarray, faces: np.ndarray, cell: float
) -> tuple[np.ndarray, np.ndarray]:
    """Merge the vertices in each `cell`-sized grid cube; drop faces that collapse."""
    _, index = np.unique(np.floor(vertices / cell).astype(np.int64), axis=0, return_inverse=True)
    index = index.ravel()
    counts = np.bincount(index)
    merged = np.stack([np.bincount(index, weights=vertices[:, k]) for k in range(3)], 1)
    merged /= counts[:, None]
    remapped = index[faces]
    distinct = (
        (remapped[:, 0] != remapped[:, 1])
        & (remapped[:, 1] != remapped[:, 2])
        & (remapped[:, 0] != remapped[:, 2])
    )
    remapped = remapped[distinct]
    _, first = np.unique(np.sort(remapped, axis=1), axis=0, return_index=True)
    return merged, remapped[np.sort(first)]  # duplicates dropped, winding kept


def simplified(source: str | Path, max_faces: int) -> Path:
    """A cached copy of the STL `source` with at most about `max_faces` triangles."""
    source = Path(source)
    key = hashlib.sha256(source.read_bytes()).hexdigest()[:16]
    target = cache_dir() / f'{source.stem}-{key}-{max_faces}.stl'
    if target.is_file():
        return target
    import fast_simplification

    vertices, faces = read_stl(source)
    if len(faces) > max_faces:
        vertices, faces = fast_simplification.simplify(
            vertices, faces, target_reduction=1.0 - max_faces / len(faces)
        )
    # Quadric simplification stalls on these CAD meshes (many borders) at about half the
    # faces; vertex clustering on a growing grid takes them the rest of the way.
    cell = 0.001  # m
    while len(faces) > max_faces:
        vertices, faces = cluster_vertices(vertices, faces, cell)
        cell *= 1.25
    target.parent.mkdir(parents=True, exist_ok=True)
    write_stl(target, vertices, faces)
    return target
