"""Simulation benchmark: real-time factor of the SO-101 and ALOHA scenes with 0-3 cameras.

    source env.sh && python bench/sim_bench.py

Runs the sim node's work loop without ROS and as fast as it can: physics in 10 ms slices
(joint_states rate 100 Hz) and every camera rendered at 30 fps of simulated time. A real-time
factor above 1 means the node can hold real time with that setup on this machine.
"""

from __future__ import annotations

import os
import platform
import time

import mujoco
import numpy as np

from vla_sim.simulation import Simulation

CAMERAS = {
    'so101': ('front', 'wrist', 'side'),
    'aloha': ('cam_high', 'cam_left_wrist', 'cam_right_wrist'),
}
SIM_SECONDS = 5.0


def measure(
    sim: Simulation, robot: str, cameras: int, height: int, width: int
) -> tuple[float, float]:
    renderer = mujoco.Renderer(sim.model, height, width) if cameras else None
    if renderer is not None:
        renderer.scene.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = 0
    sim.reset(0)
    next_frame, render_times = 0.0, []
    start = time.perf_counter()
    while sim.time < SIM_SECONDS:
        sim.step(0.01)
        if renderer is not None and sim.time >= next_frame:
            next_frame += 1 / 30
            for name in CAMERAS[robot][:cameras]:
                t = time.perf_counter()
                renderer.update_scene(sim.data, camera=name)
                renderer.render()
                render_times.append(time.perf_counter() - t)
    wall = time.perf_counter() - start
    if renderer is not None:
        renderer.close()
    return SIM_SECONDS / wall, float(np.median(render_times) * 1e3) if render_times else 0.0


def main() -> None:
    print(
        f'machine: {os.cpu_count()} cores {platform.machine()}, MUJOCO_GL='
        f'{os.environ.get("MUJOCO_GL")}, mujoco {mujoco.__version__}'
    )
    for robot in CAMERAS:
        sim = Simulation(robot, None, 640, 480)
        start = time.perf_counter()
        for _ in range(5000):
            mujoco.mj_step(sim.model, sim.data)
        step_us = (time.perf_counter() - start) / 5000 * 1e6
        print(
            f'\n{robot} ({sim.task.name}): physics step {step_us:.1f} us '
            f'(timestep {sim.model.opt.timestep * 1e3:g} ms), {sim.model.nmeshface} mesh faces'
        )
        print(f'{"cameras":>8} {"size":>8} {"real-time factor":>17} {"render ms/frame":>16}')
        for height, width in ((240, 320), (480, 640)):
            for cameras in range(4):
                rtf, render_ms = measure(sim, robot, cameras, height, width)
                print(f'{cameras:8d} {width}x{height:<4d} {rtf:17.2f} {render_ms:16.2f}')


if __name__ == '__main__':
    main()
