"""Cartesian limits through forward kinematics: boxes, planes, TCP speed (normal and reduced), tool cone."""

from __future__ import annotations

import numpy as np

from vla_kit.robots import get_robot_model
from vla_kit.safety import Check, Level, RobotState
from vla_kit.safety.braking import braking_extent

from tests.safety.streams import PANDA_HOME, drive, make_layer

PANDA = get_robot_model("panda")
DT = 0.001
TCP0 = PANDA.forward(PANDA_HOME).tcp_position  # about (0.486, 0, 0.489), tool 5.7 deg from straight down


def _push(joint: int, per_cycle: float):
    step = np.eye(7)[joint] * per_cycle
    return lambda last: last + step




def test_the_tcp_never_leaves_its_box_even_when_pushed_at_full_speed():
    box = {"min": [-1.0, -0.06, 0.0], "max": [1.0, 0.06, 1.2]}  # a 6 cm wall on each side in y
    layer, env = make_layer({"cartesian": {"tcp_box": box}})
    run = drive(layer, env, [_push(0, 0.01)] * 1500, PANDA_HOME)  # base rotation pushes the TCP towards +y
    y = PANDA.forward(np.array(run.sent)).tcp_position[:, 1]
    assert y.max() <= 0.06 and y.max() > 0.05  # right up to the wall, never through it
    assert run.monitor.report.total == 0 and layer.memory.at_rest
    assert any(r.check is Check.TCP_BOX for r in layer.log)


def test_the_braking_path_is_checked_so_a_fast_approach_slows_before_the_wall():
    box = {"min": [-1.0, -0.2, 0.0], "max": [1.0, 0.2, 1.2]}
    layer, env = make_layer({"cartesian": {"tcp_box": box}})
    run = drive(layer, env, [_push(0, 0.01)] * 3000, PANDA_HOME)
    lim = env.limits
    for k in range(1, len(run.sent)):  # from every state sent, braking would still end inside the box
        q, q1, q2 = run.sent[k], run.sent[k - 1], run.sent[k - 2] if k > 1 else PANDA_HOME
        v, v1 = (q - q1) / DT, (q1 - q2) / DT
        ext = braking_extent(q, v, (v - v1) / DT, DT, lim.a_max, lim.j_max)
        assert PANDA.forward(ext.q_stop).tcp_position[1] <= 0.2 + 1e-9


def test_the_elbow_box_and_planes_hold_as_well():
    cfg = {"cartesian": {"elbow_box": {"min": [-0.05, -1, 0], "max": [1, 1, 1]}, "planes": [{"normal": [0, 0, 1], "offset": 0.45}]}}
    layer, env = make_layer(cfg)
    run = drive(layer, env, [_push(1, -0.01)] * 1500, PANDA_HOME)  # shoulder back: elbow goes -x, TCP goes down
    kin = PANDA.forward(np.array(run.sent))
    assert kin.elbow_position[:, 0].min() >= -0.05 and kin.tcp_position[:, 2].min() >= 0.45
    assert run.monitor.report.total == 0


def test_tcp_speed_is_capped_and_reduced_mode_lowers_the_cap():
    layer, env = make_layer({"cartesian": {"tcp_speed_max": 0.5, "tcp_speed_max_reduced": 0.1}})
    run = drive(layer, env, [_push(0, 0.003)] * 800, PANDA_HOME)
    tcp = PANDA.forward(np.array(run.sent)).tcp_position
    speed = np.linalg.norm(np.diff(tcp, axis=0), axis=1) / DT
    assert speed.max() <= 0.5 + 1e-12 and speed[-100:].min() > 0.45
    layer.set_reduced(True)
    run2 = drive(layer, env, [_push(0, 0.003)] * 800, run.sent[-1], check_stop=False)
    tcp2 = PANDA.forward(np.array(run2.sent)).tcp_position
    speed2 = np.linalg.norm(np.diff(tcp2, axis=0), axis=1) / DT
    assert np.all(np.diff(speed2[:30]) <= 1e-9)  # slows down as fast as the joint limits allow ...
    assert speed2[-500:].max() <= 0.1 + 1e-12  # ... then keeps the reduced cap
    assert all(d.reduced for d in run2.decisions) and run2.decisions[-1].level >= Level.CAUTION


def test_the_tool_stays_inside_its_cone():
    layer, env = make_layer({"cartesian": {"tool_cone_deg": 20.0}})
    run = drive(layer, env, [_push(5, 0.01)] * 1500, PANDA_HOME)  # wrist flexion tilts the tool
    z = PANDA.forward(np.array(run.sent)).tool_z
    angle = np.degrees(np.arccos(-z[:, 2]))
    assert angle.max() <= 20.0 + 1e-9 and angle.max() > 19.0
    assert run.monitor.report.total == 0


def test_starting_outside_a_box_allows_only_moves_that_bring_the_tcp_back():
    box = {"min": [-1.0, -1.0, 0.0], "max": [0.45, 1.0, 1.2]}  # the TCP starts 3.6 cm beyond x = 0.45
    layer, env = make_layer({"cartesian": {"tcp_box": box}})
    d = layer.filter(PANDA_HOME, RobotState(q=PANDA_HOME), DT)
    assert d.violations[0].check is Check.TCP_BOX and d.level is Level.WARNING
    out = drive(layer, env, [_push(3, -0.01)] * 300, PANDA_HOME, check_stop=False)  # elbow opens: TCP further out
    x = PANDA.forward(np.array(out.sent)).tcp_position[:, 0]
    assert x.max() <= TCP0[0] + 1e-9
    back = drive(layer, env, [_push(3, 0.01)] * 2000, out.sent[-1], check_stop=False)  # elbow closes: TCP comes in
    assert PANDA.forward(back.sent[-1]).tcp_position[0] < 0.45


def test_link_capsules_keep_their_distance_from_obstacles():
    from vla_kit.safety.geometry import capsule_segments, obstacle_clearance

    angle = 0.6  # the TCP circles the base as joint 1 turns: put a sphere and a box in its way
    centre = [TCP0[0] * np.cos(angle), TCP0[0] * np.sin(angle), TCP0[2]]
    obstacles = {"min_distance": 0.02, "spheres": [{"centre": centre, "radius": 0.05}],
                 "boxes": [{"min": [-0.1, -0.8, 0.0], "max": [0.6, -0.6, 0.3]}]}
    layer, env = make_layer({"obstacles": obstacles})
    run = drive(layer, env, [_push(0, 0.01)] * 1500, PANDA_HOME)
    starts, ends = capsule_segments(PANDA.forward(np.array(run.sent)))
    clearance = obstacle_clearance(starts, ends, env.link_radii, (np.array([centre]), np.array([0.05])),
                                   (np.array([[-0.1, -0.8, 0.0]]), np.array([[0.6, -0.6, 0.3]])))
    assert clearance.min() >= 0.02 and clearance.min() < 0.03  # right up to the margin, never inside it
    assert run.monitor.report.total == 0 and layer.memory.at_rest
    assert any(r.check is Check.OBSTACLE for r in layer.log)


def test_a_joint_held_back_for_a_cartesian_limit_names_that_limit():
    """A joint whose command meets every joint limit but would carry the TCP out of its box is held
    back with the whole arm; its record names the box, the command and what was sent."""
    box = {"min": [-1.0, -0.06, 0.0], "max": [1.0, 0.06, 1.2]}
    layer, env = make_layer({"cartesian": {"tcp_box": box}})
    run = drive(layer, env, [_push(0, 0.0003)] * 1500, PANDA_HOME)  # 0.3 rad/s of base rotation: within the joint limits
    held = [(d, r) for d in run.decisions for r in d.violations if r.joint is not None and r.reason.startswith("held back")]
    assert held and run.monitor.report.total == 0
    for d, r in held:
        assert r.check is Check.TCP_BOX and r.reason == "held back with the whole arm by tcp_box"
        assert r.safe == d.command_sent[r.joint] and r.original != r.safe
        # The arm-level record says why a command whose pose is inside the box was refused: its braking path.
        box = [x for x in d.violations if x.joint is None and x.check is Check.TCP_BOX]
        assert len(box) == 1 and box[0].original > 0.0 and box[0].safe == 0.0
        assert box[0].reason.startswith("tcp_box: braking from the command might have gone ") and " m beyond it; held at " in box[0].reason


def test_a_command_outside_the_box_is_reported_by_its_own_excess_not_its_braking_path():
    """A target whose pose is beyond the wall is refused for that excess; the braking-path shortfall
    is reported only for targets whose pose is inside (as on the approach)."""
    from vla_kit.safety.search import furthest_cartesian

    box = {"min": [-1.0, -0.06, 0.0], "max": [1.0, 0.06, 1.2]}
    layer, env = make_layer({"cartesian": {"tcp_box": box}})
    drive(layer, env, [_push(0, 0.0003)] * 600, PANDA_HOME)  # up against the wall
    mem, plan, h = layer.memory, layer._plan, env.period
    q_fb = layer._enforcer.brake(mem, plan, h)
    through = furthest_cartesian(layer.cartesian, q_fb, mem.q + np.eye(7)[0] * 0.05, mem, plan, h, reduced=False)
    assert through.failing == [Check.TCP_BOX]
    assert through.excess_target[Check.TCP_BOX] > 0.0 and through.path == (0.0,)
    toward = furthest_cartesian(layer.cartesian, q_fb, mem.q + np.eye(7)[0] * 1e-7, mem, plan, h, reduced=False)
    # A hair towards the wall: inside the box, but its braking path is not cleared.
    assert toward.fraction < 1.0 and toward.failing == [Check.TCP_BOX]
    assert toward.excess_target[Check.TCP_BOX] == 0.0 and toward.path[0] > 0.0


def test_in_reject_mode_a_command_refused_for_its_braking_path_names_the_cartesian_limit():
    """Reject mode, a smooth approach to the box's wall: the first refused command names the box
    (arm-level, with how far braking might have gone; per joint, held back by it), not stop_distance."""
    box = {"min": [-1.0, -0.06, 0.0], "max": [1.0, 0.06, 1.2]}
    layer, env = make_layer({"cartesian": {"tcp_box": box}, "on_violation": "reject"})
    h = env.period

    def ramp(k):  # 0.3 rad/s of base rotation reached over 0.5 s by a smoothstep: inside every joint limit
        s = min(k * h / 0.5, 1.0)
        return lambda last: last + np.eye(7)[0] * 0.3 * s * s * (3 - 2 * s) * h

    run = drive(layer, env, [ramp(k) for k in range(800)], PANDA_HOME)
    first = next(d for d in run.decisions if d.violations)
    assert first.intervened and {r.check for r in first.violations} == {Check.TCP_BOX}
    arm = [r for r in first.violations if r.joint is None]
    assert len(arm) == 1 and arm[0].original > 0.0 and np.isnan(arm[0].safe)
    assert arm[0].reason.startswith("tcp_box: braking from the command might have gone ") and arm[0].reason.endswith("rejected: braking this cycle")
    assert all(r.reason == "held back with the whole arm by tcp_box; rejected: braking this cycle" for r in first.violations if r.joint is not None)
    assert run.monitor.report.total == 0
