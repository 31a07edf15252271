"""Forward kinematics of the built-in models: Panda against PyBullet, UR5 against its published DH."""

from __future__ import annotations

import numpy as np
import pytest

from vla_kit.errors import InputError, RegistryError
from vla_kit.robots import RobotModel, get_robot_model
from vla_kit.robots.kinematics import dh_transform, rot_z

pybullet = pytest.importorskip("pybullet")
pybullet_data = pytest.importorskip("pybullet_data")


@pytest.fixture(scope="module")
def bullet_panda():
    client = pybullet.connect(pybullet.DIRECT)
    robot = pybullet.loadURDF(pybullet_data.getDataPath() + "/franka_panda/panda.urdf", useFixedBase=True, physicsClientId=client)
    yield client, robot
    pybullet.disconnect(client)


def _bullet_frame(client: int, robot: int, link: int) -> np.ndarray:
    state = pybullet.getLinkState(robot, link, computeForwardKinematics=True, physicsClientId=client)
    t = np.eye(4)
    t[:3, :3] = np.array(pybullet.getMatrixFromQuaternion(state[5])).reshape(3, 3)
    t[:3, 3] = state[4]  # URDF link frame, not the centre of mass
    return t


def test_panda_fk_matches_pybullet_link_frames_for_random_configurations(bullet_panda):
    client, robot = bullet_panda
    model = get_robot_model("panda")
    rng = np.random.default_rng(0)
    for _ in range(40):
        q = rng.uniform(model.q_min, model.q_max)
        for i, qi in enumerate(q):
            pybullet.resetJointState(robot, i, qi, physicsClientId=client)
        frames = model.forward(q).frames
        for link in range(7):  # panda_link1 .. panda_link7 are frames 1 .. 7
            np.testing.assert_allclose(frames[link + 1], _bullet_frame(client, robot, link), atol=1e-6)
        np.testing.assert_allclose(frames[-1], _bullet_frame(client, robot, 11), atol=1e-6)  # panda_grasptarget


def test_panda_tcp_and_elbow_at_zero_are_where_the_urdf_puts_them():
    kin = get_robot_model("panda").forward(np.zeros(7))
    np.testing.assert_allclose(kin.tcp_position, [0.088, 0.0, 0.333 + 0.316 + 0.384 - 0.107 - 0.105], atol=1e-9)
    np.testing.assert_allclose(kin.elbow_position, [0.0825, 0.0, 0.333 + 0.316], atol=1e-9)
    np.testing.assert_allclose(kin.tool_z, [0.0, 0.0, -1.0], atol=1e-9)  # pointing straight down


def test_ur5_zero_pose_tcp_is_at_the_published_dh_position():
    kin = get_robot_model("ur5").forward(np.zeros(6))
    # x = a2 + a3, y = -(d4 + d6), z = d1 - d5 for the standard-DH UR5 at q = 0.
    np.testing.assert_allclose(kin.tcp_position, [-0.425 - 0.39225, -(0.10915 + 0.0823), 0.089159 - 0.09465], atol=1e-12)
    np.testing.assert_allclose(kin.elbow_position, [-0.425, 0.0, 0.089159], atol=1e-12)


def test_ur5_fk_matches_a_plain_product_of_dh_matrices():
    d = [0.089159, 0.0, 0.0, 0.10915, 0.09465, 0.0823]
    a = [0.0, -0.425, -0.39225, 0.0, 0.0, 0.0]
    alpha = [np.pi / 2, 0.0, 0.0, np.pi / 2, -np.pi / 2, 0.0]
    model = get_robot_model("ur5")
    rng = np.random.default_rng(1)
    for q in rng.uniform(-np.pi, np.pi, size=(25, 6)):
        t = np.eye(4)
        for i in range(6):
            ct, st, ca, sa = np.cos(q[i]), np.sin(q[i]), np.cos(alpha[i]), np.sin(alpha[i])
            t = t @ np.array([[ct, -st * ca, st * sa, a[i] * ct], [st, ct * ca, -ct * sa, a[i] * st], [0, sa, ca, d[i]], [0, 0, 0, 1]])
        np.testing.assert_allclose(model.forward(q).tcp, t, atol=1e-12)


def test_ur5_upper_arm_and_forearm_keep_their_lengths():
    model = get_robot_model("ur5")
    for q in np.random.default_rng(2).uniform(-np.pi, np.pi, size=(20, 6)):
        p = model.forward(q).frames[:, :3, 3]
        assert np.linalg.norm(p[2] - p[1]) == pytest.approx(0.425, abs=1e-12)
        assert np.linalg.norm(p[3] - p[2]) == pytest.approx(0.39225, abs=1e-12)


@pytest.mark.parametrize("name", ["panda", "ur5"])
def test_batched_fk_equals_one_configuration_at_a_time(name):
    model = get_robot_model(name)
    q = np.random.default_rng(3).uniform(model.q_min, model.q_max, size=(4, 5, model.dof))
    batch = model.forward(q).frames
    assert batch.shape == (4, 5, model.dof + 2, 4, 4)
    for idx in np.ndindex(4, 5):
        np.testing.assert_allclose(batch[idx], model.forward(q[idx]).frames, atol=1e-14)


@pytest.mark.parametrize("name", ["panda", "ur5"])
def test_lever_arms_bound_how_far_the_tcp_and_elbow_can_move(name):
    model = get_robot_model(name)
    levers = model.lever_arms()
    rng = np.random.default_rng(4)
    for _ in range(200):
        q0 = rng.uniform(model.q_min, model.q_max)
        dq = rng.normal(0.0, 0.3, model.dof)
        k0, k1 = model.forward(q0), model.forward(q0 + dq)
        bound = levers @ np.abs(dq)
        assert np.linalg.norm(k1.tcp_position - k0.tcp_position) <= bound + 1e-12
        assert np.linalg.norm(k1.elbow_position - k0.elbow_position) <= bound + 1e-12
        angle = np.arccos(np.clip(k0.tool_z @ k1.tool_z, -1.0, 1.0))
        assert angle <= np.abs(dq).sum() + 1e-9


def test_fk_rejects_a_configuration_of_the_wrong_length():
    with pytest.raises(InputError, match=r"\(\.\.\., 7\)"):
        get_robot_model("panda").forward(np.zeros(6))


def test_unknown_robot_name_lists_the_known_ones():
    with pytest.raises(RegistryError, match="panda, ur5"):
        get_robot_model("kuka")


def test_robot_model_rejects_inverted_position_limits():
    with pytest.raises(InputError, match="lower position limit"):
        RobotModel(name="x", joint_names=("j",), q_min=[1.0], q_max=[0.0], v_max=[1.0], a_max=[1.0], j_max=[1.0],
                   control_period=0.01, pre=np.eye(4)[None], post=np.eye(4)[None], tool=np.eye(4), elbow_index=1)


def test_robot_model_rejects_non_positive_rate_limits():
    with pytest.raises(InputError, match="finite and > 0"):
        RobotModel(name="x", joint_names=("j",), q_min=[0.0], q_max=[1.0], v_max=[0.0], a_max=[1.0], j_max=[1.0],
                   control_period=0.01, pre=np.eye(4)[None], post=np.eye(4)[None], tool=np.eye(4), elbow_index=1)


def test_dh_and_urdf_style_joints_compose_the_same_way():
    # pre Rz(q) post with pre = I is the standard DH transform Rz(q) Tz(d) Tx(a) Rx(alpha).
    model = RobotModel(name="one", joint_names=("j",), q_min=[-1.0], q_max=[1.0], v_max=[1.0], a_max=[1.0], j_max=[1.0],
                       control_period=0.01, pre=np.eye(4)[None], post=dh_transform(0.1, 0.2, 0.3)[None], tool=np.eye(4), elbow_index=1)
    np.testing.assert_allclose(model.forward(np.array([0.7])).tcp, rot_z(0.7) @ dh_transform(0.1, 0.2, 0.3), atol=1e-15)
