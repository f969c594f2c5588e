"""Cameras of a simulation rendered off-screen at given sizes, in the caller's thread.

For in-process loops (benchmarks, `vla corrections`, `vla grounding`); the sim node renders its
own.
"""

from __future__ import annotations

import mujoco
import numpy as np


class SimCameras:
    """Named cameras of `sim` at (height, width) each; a renderer draws at one size only."""

    def __init__(self, sim, shapes: dict[str, tuple[int, int]]) -> None:
        self.sim = sim
        self.shapes = {camera: tuple(shape) for camera, shape in shapes.items()}
        # A renderer's offscreen buffer is the model's: grow it to the largest camera asked for.
        buffer = sim.model.vis.global_
        buffer.offheight = max([buffer.offheight, *(h for h, _ in self.shapes.values())])
        buffer.offwidth = max([buffer.offwidth, *(w for _, w in self.shapes.values())])
        self.renderers = {}
        for h, w in set(self.shapes.values()):
            self.renderers[h, w] = mujoco.Renderer(sim.model, h, w)
            self.renderers[h, w].scene.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = 0

    def render(self) -> dict[str, np.ndarray]:
        frames = {}
        for camera, shape in self.shapes.items():
            renderer = self.renderers[shape]
            renderer.update_scene(self.sim.data, camera=camera)
            frames[camera] = renderer.render().copy()
        return frames

    def close(self) -> None:
        for renderer in self.renderers.values():
            renderer.close()

    def __enter__(self) -> SimCameras:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
