import mujoco
import numpy as np
import pytest

from vla_common.errors import ConfigError
from vla_sim.meshes import read_stl
from vla_sim.meshes import simplified
from vla_sim.meshes import write_stl
from vla_sim.rendering import SimCameras
from vla_sim.scene import CUBE_HALF
from vla_sim.scene import look_at_quat
from vla_sim.scene import so101_model_path
from vla_sim.simulation import CommandRejectedError
from vla_sim.simulation import Simulation
from vla_sim.simulation import intrinsics

COLOURS = ('red', 'green', 'blue')


@pytest.fixture(scope='module')
def sim():
    return Simulation('so101', 'pick_cube', 160, 120)


def cubes(sim):
    return np.array([sim.task.cube_position(sim.data, c) for c in COLOURS])


def test_same_seed_same_scene_other_seed_other_scene(sim):
    first = (sim.reset(7), cubes(sim))
    other = (sim.reset(8), cubes(sim))
    again = (sim.reset(7), cubes(sim))
    assert first[0] == again[0]
    np.testing.assert_array_equal(first[1], again[1])
    assert not np.allclose(first[1], other[1])
    assert first[0] in {f'pick up the {c} cube' for c in COLOURS}


def test_scenes_are_valid_and_settle(sim):
    targets = set()
    for seed in range(20):
        targets.add(sim.reset(seed))
        start = cubes(sim)
        xy = start[:, :2]
        distances = [np.linalg.norm(xy[i] - xy[j]) for i in range(3) for j in range(i + 1, 3)]
        assert min(distances) >= 0.06
        assert np.all((xy[:, 0] >= 0.17) & (xy[:, 0] <= 0.30))
        sim.step(0.5)
        np.testing.assert_allclose(cubes(sim), start, atol=2e-3)  # resting, not thrown about
    assert len(targets) == 3, 'every colour is asked for'


def test_a_position_command_moves_the_named_joint(sim):
    sim.reset(0)
    before, _, _ = sim.joint_state()
    sim.command(['elbow_flex', 'shoulder_pan'], [0.6, -0.4])
    sim.step(1.5)
    after, velocity, _ = sim.joint_state()
    index = {n: i for i, n in enumerate(sim.joint_names)}
    assert after[index['shoulder_pan']] == pytest.approx(-0.4, abs=0.03)
    assert after[index['elbow_flex']] == pytest.approx(0.6, abs=0.05)
    assert after[index['wrist_roll']] == pytest.approx(before[index['wrist_roll']], abs=0.02)
    assert np.abs(velocity).max() < 0.05


@pytest.mark.parametrize(
    ('names', 'positions', 'reason'),
    [
        (['elbow'], [0.1], 'unknown joints'),
        (['elbow_flex'], [float('nan')], 'NaN or inf'),
        (['elbow_flex'], [3.0], 'outside the joint range'),
        (['elbow_flex', 'gripper'], [0.1], '2 names but 1 positions'),
    ],
)
def test_bad_commands_are_rejected_and_targets_kept(sim, names, positions, reason):
    sim.reset(0)
    sim.command(['elbow_flex'], [0.2])
    with pytest.raises(CommandRejectedError, match=reason):
        sim.command(names, positions)
    assert sim.data.ctrl[sim.joint_names.index('elbow_flex')] == pytest.approx(0.2)


def test_success_needs_the_target_lifted_and_held_and_other_cubes_count_as_wrong():
    sim = Simulation('so101', 'pick_cube', 160, 120)
    sim.model.opt.gravity[:] = 0.0  # a lifted cube floats: a stand-in for a gripper
    sim.reset(1)
    target = sim.task.target
    other = next(c for c in COLOURS if c != target)

    def lift(colour, height):
        adr = sim.model.jnt_qposadr[sim.model.joint(f'cube_{colour}').id]
        sim.data.qpos[adr + 2] = CUBE_HALF + height
        mujoco.mj_forward(sim.model, sim.data)

    lift(target, 0.04)  # below the 5 cm bar
    assert not sim.step(1.0).success
    lift(target, 0.08)
    assert not sim.step(0.3).success  # not held long enough yet
    outcome = sim.step(0.3)
    assert outcome.success
    assert not outcome.wrong_object
    lift(other, 0.08)
    assert sim.step(0.6).wrong_object


def test_images_show_the_three_cubes():
    sim = Simulation('so101', 'pick_cube', 320, 240)
    sim.reset(0)
    renderer = mujoco.Renderer(sim.model, 240, 320)
    renderer.update_scene(sim.data, camera='front')
    image = renderer.render().astype(int)
    renderer.close()
    red = (image[..., 0] > 150) & (image[..., 1] < 80) & (image[..., 2] < 80)
    green = (image[..., 1] > 120) & (image[..., 0] < 80) & (image[..., 2] < 90)
    blue = (image[..., 2] > 150) & (image[..., 0] < 80) & (image[..., 1] < 120)
    assert red.sum() > 20
    assert green.sum() > 20
    assert blue.sum() > 20


def test_sim_cameras_render_larger_than_the_scene_was_compiled_for():
    sim = Simulation('so101', 'pick_cube', 160, 120)
    sim.reset(0)
    with SimCameras(sim, {'front': (120, 160), 'wrist': (720, 1280)}) as cameras:
        frames = cameras.render()
    assert frames['front'].shape == (120, 160, 3)
    assert frames['wrist'].shape == (720, 1280, 3)
    assert frames['wrist'].std() > 10  # a scene, not an empty buffer


def test_meshes_are_decimated_and_cached(tmp_path, monkeypatch):
    monkeypatch.setenv('VLA_CACHE_DIR', str(tmp_path))
    source = so101_model_path().parent / 'assets' / 'sts3215_03a_v1.stl'
    vertices, faces = read_stl(source)
    small = simplified(source, 2000)
    assert small.parent == tmp_path / 'meshes'
    small_vertices, small_faces = read_stl(small)
    assert len(small_faces) < len(faces) / 2
    # same size and place as the original: bounding boxes within 2 mm (thin edges shrink)
    np.testing.assert_allclose(small_vertices.min(0), vertices.min(0), atol=2e-3)
    np.testing.assert_allclose(small_vertices.max(0), vertices.max(0), atol=2e-3)
    assert simplified(source, 2000) == small  # cached: same file, not recomputed
    copy = tmp_path / 'copy.stl'
    write_stl(copy, small_vertices, small_faces)
    again_vertices, again_faces = read_stl(copy)
    assert len(again_faces) == len(small_faces)
    np.testing.assert_allclose(np.sort(again_vertices, 0), np.sort(small_vertices, 0), atol=1e-6)


def test_camera_helpers():
    q = look_at_quat((1.0, 0.0, 0.0), (0.0, 0.0, 0.0))
    rotation = np.zeros(9)
    mujoco.mju_quat2Mat(rotation, q)
    np.testing.assert_allclose(-rotation.reshape(3, 3)[:, 2], [-1.0, 0.0, 0.0], atol=1e-9)
    fx, fy, cx, cy = intrinsics(90.0, 640, 480)
    assert fy == pytest.approx(240.0)
    assert (fx, cx, cy) == (fy, 319.5, 239.5)


def test_unknown_robot_and_task():
    with pytest.raises(ConfigError, match="no simulation of robot 'ur5'; available: so101"):
        Simulation('ur5')
    with pytest.raises(ConfigError, match="unknown task 'insertion'; available: pick_cube"):
        Simulation('so101', 'insertion')
    with pytest.raises(ConfigError, match="unknown task 'stack'; available: pick_cube"):
        Simulation('so101').reset(0, 'stack')


@pytest.fixture(scope='module')
def aloha():
    return Simulation('aloha', None, 160, 120)


def test_aloha_joints_follow_the_robot_config_and_one_gripper_value_drives_both_fingers(aloha):
    from vla_common.robot_config import load_robot_config

    assert aloha.joint_names == tuple(load_robot_config('aloha')['joints'])
    assert aloha.reset(3) == 'transfer the cube to the left arm'
    aloha.command(['left_waist', 'right_gripper'], [0.3, 0.04])
    aloha.step(1.5)
    position, _, _ = aloha.joint_state()
    assert position[aloha.joint_names.index('left_waist')] == pytest.approx(0.3, abs=0.02)
    assert position[aloha.joint_names.index('right_gripper')] == pytest.approx(0.04, abs=0.003)
    right_finger = aloha.model.joint('vx300s_right/right_finger')
    assert aloha.data.qpos[right_finger.qposadr[0]] == pytest.approx(-0.04, abs=0.003)
    with pytest.raises(CommandRejectedError, match='outside the joint range'):
        aloha.command(['left_gripper'], [0.2])


def test_aloha_box_is_seeded_and_a_handover_is_judged_from_positions(aloha):
    aloha.reset(5)
    first = aloha.task.box_position(aloha.data)
    aloha.reset(6)
    assert not np.allclose(first, aloha.task.box_position(aloha.data))
    aloha.reset(5)
    np.testing.assert_array_equal(first, aloha.task.box_position(aloha.data))
    assert not aloha.step(1.0).success, 'a box on the table is no success'
    aloha.command(['left_gripper'], [0.057])  # wide open: the box fits between the fingers
    aloha.step(1.0)
    aloha.model.opt.gravity[:] = 0.0  # the box floats where it is put: a stand-in for a grasp
    try:
        pinch = aloha.data.site('vx300s_left/pinch').xpos.copy()
        adr = aloha.model.joint('red_box_joint').qposadr[0]
        aloha.data.qpos[adr : adr + 3] = pinch + np.array([0.0, 0.0, 0.02])  # off centre, < 3 cm
        aloha.data.qvel[:] = 0.0
        mujoco.mj_forward(aloha.model, aloha.data)
        assert pinch[2] > 0.07
        assert not aloha.step(0.3).success, 'held for 0.5 s first'
        assert aloha.step(0.4).success
    finally:
        aloha.model.opt.gravity[:] = (0.0, 0.0, -9.81)


def test_insertion_is_judged_from_where_the_peg_is_in_the_socket():
    sim = Simulation('aloha', 'insertion', 64, 48)
    assert sim.reset(4) == 'insert the peg into the socket'
    with pytest.raises(ConfigError, match="task 'transfer_cube' has its own scene"):
        sim.reset(4, 'transfer_cube')
    task, data = sim.task, sim.data
    assert task.peg.position(data)[0] > 0 > task.socket.position(data)[0]
    assert not sim.step(0.5).success, 'both on the table'
    sim.model.opt.gravity[:] = 0.0  # objects float where they are put: stand-ins for grasps

    def place(peg_x, peg_dy=0.0, height=0.2):
        for obj, x, dy in ((task.socket, 0.0, 0.0), (task.peg, peg_x, peg_dy)):
            obj.place(data, x, 0.5 + dy)
            data.qpos[obj._qpos + 2] = height
        data.qvel[:] = 0.0
        mujoco.mj_forward(sim.model, data)
        return sim.step(0.7).success

    try:
        # The socket's opening is at x = 0.06; the peg's near end at peg_x - 0.06.
        assert place(0.105), 'near end 1.5 cm inside the socket'
        assert not place(0.125), 'only 0.5 cm inside'
        assert not place(0.2), 'in front of the opening'
        assert not place(0.105, peg_dy=0.03), 'beside the socket'
        assert not place(0.105, height=0.04), 'too low: not lifted off the table'
    finally:
        sim.model.opt.gravity[:] = (0.0, 0.0, -9.81)
