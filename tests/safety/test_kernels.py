"""The compiled kernels give the numpy reference's numbers bit for bit (random and adversarial states)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from vla_kit.safety import Envelope
from vla_kit.safety.braking import brake_accel, braking_extent
from vla_kit.safety.checks import PlanLimits, backward_differences, plan_limits, stop_feasible
from vla_kit.safety.kernels import brake_accel_1, braking_extent_1, braking_step, furthest_stoppable_joints, stop_feasible_1
from vla_kit.safety.search import furthest_stoppable
from vla_kit.safety.state import Memory

_FINE = np.arange(1, 33, dtype=np.float64) / 32.0  # the search grid
finite = dict(allow_nan=False, allow_infinity=False)
# Any state, not just realistic ones: velocities and accelerations well past the limits, both signs,
# exact zeros, tiny values and subnormals (the kernels must agree where the law itself is strained).
values = st.one_of(st.floats(-1e4, 1e4, **finite), st.sampled_from([0.0, -0.0, 1e-300, -1e-300, 5e-324, 1e-12, -1e-12]))
limits = st.tuples(st.sampled_from([0.0005, 0.001, 0.002, 0.004, 1 / 240, 0.01]), st.floats(0.5, 50.0), st.floats(10.0, 50000.0))


def _same(x: float, y: float) -> bool:
    """The same float64 bits (so +0 and -0 differ), or both NaN."""
    return np.float64(x).tobytes() == np.float64(y).tobytes() or (np.isnan(x) and np.isnan(y))


@settings(max_examples=2000, deadline=None)
@given(st.floats(-10.0, 10.0, **finite), values, values, limits)
def test_one_joint_braking_extent_is_the_reference_bit_for_bit(q, v, a, lim):
    h, a_max, j_max = lim
    ref = braking_extent(np.array(q), np.array(v), np.array(a), h, np.array(a_max), np.array(j_max))
    got = braking_extent_1(q, v, a, h, a_max, j_max)
    for name, x in zip(("q_stop", "q_low", "q_high", "v_peak"), got[:4]):
        assert _same(x, float(getattr(ref, name))), (name, x, float(getattr(ref, name)))
    assert got[4] == bool(ref.exact)


@settings(max_examples=1000, deadline=None)
@given(st.floats(-3.0, 3.0, **finite), values, values, limits, st.floats(0.01, 5.0), st.sampled_from([0.0, 1e-9, 1e-6]))
def test_one_joint_stop_feasibility_is_the_reference(q, v, a, lim, v_lim, tol):
    h, a_max, j_max = lim
    plan = PlanLimits(*(np.array([x]) for x in (-2.9, 2.9, v_lim, a_max, j_max, 1.0)), tol)
    ref = stop_feasible(np.array([q]), np.array([v]), np.array([a]), plan, h, exact=True)[0]
    assert stop_feasible_1(q, v, a, h, -2.9, 2.9, v_lim, a_max, j_max, tol) == bool(ref[0])


def _reference_search(q_fb, q_c, bad, mem, plan, h):
    """The numpy search over the whole 32-point grid: the furthest feasible point, and the grid's verdicts (32, len(bad))."""
    d = q_c[bad] - q_fb[bad]
    cand = q_fb[bad] + _FINE[:, None] * d
    v, a, _ = backward_differences(cand, mem.q[bad], mem.v[bad], mem.a[bad], h)
    feas, _, _ = stop_feasible(cand, v, a, plan.take(bad), h, exact=True)
    best = len(_FINE) - 1 - np.argmax(feas[::-1], axis=0)
    out = q_c.copy()
    out[bad] = np.where(feas.any(axis=0), cand[best, np.arange(bad.size)], q_fb[bad])
    return out, feas


@settings(max_examples=400, deadline=None)
@given(st.integers(0, 2**32 - 1), st.sampled_from([0.001, 0.002, 1 / 240]), st.floats(0.0, 1.0))
def test_the_clamping_search_picks_the_reference_point_near_the_limits(seed, h, edge):
    """Joints moving fast towards (or just inside) their limits: where the search is hard."""
    rng = np.random.default_rng(seed)
    lim = Envelope.from_dict({}).limits
    plan = plan_limits(lim, h, h)
    n = lim.q_min.shape[0]
    span = plan.q_hi - plan.q_lo
    q_prev = plan.q_hi - edge * 0.2 * span * rng.uniform(0, 1, n)
    v_prev = rng.uniform(-1, 1, n) * plan.v
    a_prev = rng.uniform(-1, 1, n) * plan.a
    mem = Memory(q=q_prev, v=v_prev, a=a_prev, q_lo=plan.q_lo, q_hi=plan.q_hi, tcp=None, allowance={})
    q_fb = q_prev + h * (v_prev + h * rng.uniform(-1, 1, n) * plan.a * 0.5)
    q_c = np.clip(q_fb + rng.uniform(-1, 1, n) * plan.step, plan.q_lo, plan.q_hi)
    bad = np.flatnonzero(rng.uniform(0, 1, n) < 0.7)
    ref, feas = _reference_search(q_fb, q_c, bad, mem, plan, h)
    got = q_c.copy()
    furthest_stoppable_joints(got, q_fb, q_c, bad.astype(np.int64), mem.q, mem.v, mem.a, h, plan.q_lo, plan.q_hi, plan.v, plan.a,
                              plan.j, plan.pos_tol)
    assert np.array_equal(furthest_stoppable(q_fb, q_c, mem, plan, h, cheap_ok=~np.isin(np.arange(n), bad)), got)
    assert got[~np.isin(np.arange(n), bad)].tobytes() == q_c[~np.isin(np.arange(n), bad)].tobytes()
    grid = q_fb[bad] + _FINE[:, None] * (q_c[bad] - q_fb[bad])
    for col, i in enumerate(bad):
        ok = feas[:, col]
        if not ok.any() or ok[: np.flatnonzero(ok)[-1] + 1].all():  # monotone: the furthest feasible point, bit for bit
            assert got[i].tobytes() == ref[i].tobytes(), i
        else:  # a feasible grid point whose upper neighbour is not (or the top): never a point the joint cannot stop from
            if got[i] == q_fb[i]:  # the braking step: the first grid point was refused
                assert not ok[0], i
            else:
                (k,) = np.flatnonzero(grid[:, col] == got[i])[-1:]
                assert ok[k] and (k == len(_FINE) - 1 or not ok[k + 1]), i


def test_the_per_cycle_kernels_are_compiled_at_import_with_one_signature_that_frozen_and_writable_arrays_both_fit():
    """Explicit signatures: importing compiles (or loads) them, and a cycle never triggers another compile.
    With lazy typing a read-only memory array would be a new type and compile mid-cycle (half a second cold)."""
    import subprocess
    import sys

    code = ("from numba.core.registry import CPUDispatcher\n"
            "from vla_kit.robots import fk_kernel, get_robot_model\n"
            "from vla_kit.safety import cartesian_kernels, kernels\n"
            "jits = list({id(f): f for m in (fk_kernel, kernels, cartesian_kernels) for f in vars(m).values()\n"
            "             if isinstance(f, CPUDispatcher)}.values())  # each once, wherever it is imported\n"
            "count = lambda: {f.__name__: len(f.signatures) for f in jits}\n"
            "before = count()\n"
            "import numpy as np\n"
            "from vla_kit.safety import Envelope, RobotState, SafetyLayer\n"
            "env = Envelope.from_dict({'cartesian': {'tcp_speed_max': 1.0, 'tcp_speed_max_reduced': 0.25, 'tcp_box': {'min': [-0.2, -0.5, 0.1], 'max': [0.75, 0.5, 1.0]},\n"
            "                          'tool_cone_deg': 60.0}, 'separation': {'enabled': True},\n"
            "                          'obstacles': {'spheres': [{'centre': [0.6, 0.45, 0.3], 'radius': 0.1}]}})\n"
            "layer, model = SafetyLayer(env, get_robot_model('panda')), get_robot_model('panda')\n"
            "q = np.array([0.0, -0.3, 0.0, -2.0, 0.0, 1.8, 0.7])\n"
            "for k in range(300):  # push every joint: clamps, stop-distance and Cartesian searches, a person nearby\n"
            "    q = np.asarray(layer.filter(q + 0.01, RobotState(q=q, humans=np.array([[1.5, 0.0, 0.5]])), env.period).command_sent)\n"
            "after = count()\n"
            "entries = [f.__name__ for f in jits if not f._can_compile]  # declared with their signature\n"
            "print(sorted(f for f in before if before[f] != after[f]), all(before[f] == 1 for f in entries), len(entries))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    all_compiled, how_many = out.stdout.split()[1:]
    assert out.stdout.split()[0] == "[]" and all_compiled == "True" and int(how_many) == 19, out.stdout


@settings(max_examples=2000, deadline=None)
@given(values, values, limits)
def test_the_braking_step_is_the_reference_law_bit_for_bit(v, a, lim):
    h, a_max, j_max = lim
    q = np.array([0.3, -1.2])
    vv, aa = np.array([v, -v]), np.array([a, -a])
    ref = q + h * (vv + h * brake_accel(vv, aa, h, np.full(2, a_max), np.full(2, j_max)))
    got = np.empty(2)
    braking_step(q, vv, aa, h, np.full(2, a_max), np.full(2, j_max), got)
    for x, y in zip(got, ref):
        assert _same(x, y), (x, y)
    assert _same(brake_accel_1(v, a, h, a_max, j_max), float(brake_accel(np.array(v), np.array(a), h, np.array(a_max), np.array(j_max))))


@settings(max_examples=1000, deadline=None)
@given(cmd=st.lists(st.one_of(st.floats(-1e308, 1e308), st.sampled_from([np.nan, np.inf, -np.inf, 0.0])), min_size=7, max_size=7),
       prev=st.one_of(st.none(), st.lists(st.floats(-10.0, 10.0), min_size=7, max_size=7)),
       scale=st.sampled_from([1e-3, 0.1, 1.0, 100.0]), check=st.booleans())
def test_the_command_screen_is_the_numpy_pretest(cmd, prev, scale, check):
    """NaN/inf anywhere is non-finite; a jump is a joint beyond ``absurd`` from the last position
    sent and (when there is one) from the previous command, as numpy computes it."""
    from vla_kit.safety.kernels import SCREEN_JUMP, SCREEN_NON_FINITE, SCREEN_OK, screen_command

    with np.errstate(over="ignore"):  # a huge finite command times the scale may overflow to inf: also a case
        q = np.array(cmd) * scale if all(np.isfinite(cmd)) else np.array(cmd)
    mem_q = np.linspace(-1.0, 1.0, 7)
    absurd = np.full(7, 0.05)
    previous = None if prev is None else np.array(prev)
    got = screen_command(q, mem_q, q if previous is None else previous, previous is not None, absurd, check)
    if not np.isfinite(q).all():
        assert got == SCREEN_NON_FINITE
        return
    with np.errstate(over="ignore"):
        step = np.abs(q - mem_q)
        if previous is not None:
            step = np.minimum(step, np.abs(q - previous))
    assert got == (SCREEN_JUMP if check and (step > absurd).any() else SCREEN_OK)


@settings(max_examples=500, deadline=None)
@given(st.lists(st.one_of(st.floats(-4.0, 4.0, **finite), st.sampled_from([0.0, 0.5, np.nan, np.inf, -np.inf])), min_size=7, max_size=7),
       st.lists(st.sampled_from([0.0, 0.5, -0.5, 0.25]), min_size=7, max_size=7), st.sampled_from([0.0, 0.1, 0.5, 1.0]))
def test_the_state_watchdog_kernels_are_the_numpy_tests(measured, last, limit):
    """all_finite = np.isfinite(q).all(); worst_deviation = argmax of |q - last| when one is beyond the
    limit (first on ties), else -1; ties and repeated values are common in the drawn states."""
    from vla_kit.safety.kernels import all_finite, worst_deviation

    q, last = np.array(measured), np.array(last)
    assert all_finite(q) == bool(np.isfinite(q).all())
    if np.isfinite(q).all():
        err = np.abs(q - last)
        want = int(np.argmax(err)) if np.count_nonzero(err > limit) else -1
        assert worst_deviation(q, last, limit) == want
