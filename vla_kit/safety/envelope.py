"""The safety envelope: every limit the layer enforces, as data (the ``safety:`` section of params).

::

    safety:
      enabled: true
      robot: panda                 # registered robot model; defaults below derive from it
      on_violation: clamp          # clamp | reject
      dt: 0.001                    # s, nominal control period (default: the robot's)
      joints:
        position_margin: 0.05      # rad kept inside the robot's own position limits
        v_max: [1.0, 1.0, 1.0, 1.0, 1.5, 1.5, 1.5]   # rad/s (scalar = every joint)
      cartesian:
        tcp_box: {min: [0.2, -0.5, 0.02], max: [0.8, 0.5, 0.9]}   # m, base frame
        tcp_speed_max: 0.5         # m/s
        tcp_speed_max_reduced: 0.1 # m/s while reduced mode is on
        tool_cone_deg: 60          # deg, tool z from straight down
        link_radius: 0.08          # m, capsule around every link (obstacles, separation)
      obstacles:                   # keep-out volumes, checked against the link capsules
        min_distance: 0.02         # m kept free between any capsule and any obstacle
        spheres: [{centre: [0.5, 0.3, 0.2], radius: 0.1}]
        boxes: [{min: [0.4, -0.6, 0.0], max: [0.7, -0.4, 0.3]}]
      separation:                  # ISO/TS 15066 speed-and-separation monitoring
        enabled: true
        human_speed: 1.6           # m/s, v_h
        reaction_time: 0.1         # s, T_r
      watchdog: {command_timeout: 0.1, max_missed_state_reads: 3}

Unknown keys are errors. :meth:`Envelope.from_dict` turns any problem into a
:class:`~vla_kit.errors.ParamsError` naming the key path (``safety.joints.v_max[3]``), the value
and what was expected. Per-joint values may be a scalar (every joint) or one value per joint;
joint limits may tighten the robot's published ones, never loosen them.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from enum import Enum
from typing import Any, Mapping

import numpy as np
from pydantic import BaseModel, ConfigDict, PrivateAttr, ValidationError, model_validator

from vla_kit.errors import ParamsError
from vla_kit.robots.models import ROBOT_MODELS, get_robot_model

__all__ = [
    "OnViolation",
    "Box",
    "Plane",
    "JointParams",
    "CartesianParams",
    "GripperParams",
    "WatchdogParams",
    "Sphere",
    "ObstacleParams",
    "SeparationParams",
    "Envelope",
    "JointLimits",
]

PerJoint = float | list[float]


class OnViolation(str, Enum):
    """What the layer does with an out-of-limit command: clamp it, or reject it (brake this cycle)."""

    CLAMP = "clamp"
    REJECT = "reject"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Box(_Section):
    """Axis-aligned keep-in box in the robot base frame (m)."""

    min: list[float]
    max: list[float]


class Sphere(_Section):
    """A keep-out sphere (base frame, m)."""

    centre: list[float]
    radius: float


class Plane(_Section):
    """Keep-in half-space ``normal . p >= offset`` (base frame, m); applies to the TCP and the elbow."""

    normal: list[float]
    offset: float


class JointParams(_Section):
    """Per-joint limits. ``None`` means: derived from the robot model."""

    position_margin: PerJoint = 0.05  # rad inside the robot's position limits (when q_min/q_max are not given)
    q_min: list[float] | None = None  # rad, lower position limits
    q_max: list[float] | None = None  # rad, upper position limits
    v_max: PerJoint | None = None  # rad/s; default: the robot's published limit
    a_max: PerJoint | None = None  # rad/s^2; default: the robot's published limit
    j_max: PerJoint | None = None  # rad/s^3; default: the robot's published limit
    max_step: PerJoint | None = None  # rad per nominal cycle (scaled by dt/period); default: v_max * dt
    absurd_step_factor: float = 10.0  # a step above this many max_steps is absurd: e-stop


class CartesianParams(_Section):
    """Cartesian limits, checked through forward kinematics. ``None`` switches a check off."""

    tcp_box: Box | None = None  # m, TCP keep-in box
    elbow_box: Box | None = None  # m, elbow keep-in box
    planes: list[Plane] = []  # keep-in half-spaces for TCP and elbow
    tcp_speed_max: float | None = None  # m/s, TCP speed in normal mode
    tcp_speed_max_reduced: float | None = None  # m/s, TCP speed in reduced mode
    tool_cone_deg: float | None = None  # deg, max angle of the tool z axis from straight down
    link_radius: float | list[float] = 0.08  # m, capsule radius around each link segment (one value, or dof + 1)


class ObstacleParams(_Section):
    """Keep-out volumes: no link capsule may come closer than ``min_distance`` to any of them.

    The capsule from the base to joint 1 never moves: keep obstacles clear of it (a table under
    the robot is a ``cartesian.planes`` half-space, not an obstacle box).
    """

    min_distance: float = 0.02  # m, clearance kept between every link capsule and every obstacle
    spheres: list[Sphere] = []  # m, keep-out spheres
    boxes: list[Box] = []  # m, keep-out axis-aligned boxes


class SeparationParams(_Section):
    """Speed-and-separation monitoring (ISO/TS 15066): ``S_p = S_h + S_r + S_s + C + Z_d + Z_r``.

    Needs person positions in :attr:`vla_kit.safety.state.RobotState.humans`; see
    :mod:`vla_kit.safety.separation` for the zones.
    """

    enabled: bool = False  # monitor the separation from people
    human_speed: float = 1.6  # m/s, v_h (ISO 13855 walking speed)
    reaction_time: float = 0.1  # s, T_r: sensing, processing and the layer's own reaction
    intrusion_distance: float = 0.2  # m, C: reach past the detection (ISO 13855, from the sensor's resolution)
    human_uncertainty: float = 0.1  # m, Z_d: position uncertainty of the person sensing
    robot_uncertainty: float = 0.01  # m, Z_r: position uncertainty of the robot (kinematic model, encoders)
    caution_distance: float = 0.5  # m beyond the reduced-speed zone where the level already turns CAUTION
    data_timeout: float = 0.2  # s, person positions older than this (no new data) trigger a protective stop


class GripperParams(_Section):
    """Gripper command limits."""

    max_effort: float | None = None  # N, largest grasp force a command may ask for


class WatchdogParams(_Section):
    """Stale data handling."""

    command_timeout: float = 0.1  # s, a command older than this (by state stamp) triggers a controlled stop
    max_missed_state_reads: int = 3  # consecutive invalid/missing states before a controlled stop
    max_tracking_error: float | None = None  # rad, |measured - last commanded| above this is a WARNING


@dataclass(frozen=True)
class JointLimits:
    """Resolved per-joint limits (read-only float64 arrays, one value per joint)."""

    names: tuple[str, ...]
    q_min: np.ndarray  # rad
    q_max: np.ndarray  # rad
    v_max: np.ndarray  # rad/s
    a_max: np.ndarray  # rad/s^2
    j_max: np.ndarray  # rad/s^3
    max_step: np.ndarray  # rad per nominal cycle


class _Issue(ValueError):
    """A semantic problem at ``key_path`` (relative to the envelope); pydantic wraps it, from_dict unwraps it."""

    def __init__(self, key_path: str, value: Any, expected: str) -> None:
        self.key_path, self.value, self.expected = key_path, value, expected
        # The same path as a tuple of keys and indices, for line lookups: ("joints", "v_max", 3).
        self.loc = tuple(int(p) if p.isdigit() else p for p in re.findall(r"[^.\[\]]+", key_path))
        super().__init__(f"{key_path}: got {value!r}; expected {expected}")


def _finite(x: float) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)


def _vector(value: PerJoint | None, default: np.ndarray, key: str, *, positive: bool, upper: np.ndarray | None = None) -> np.ndarray:
    """Resolve a scalar-or-per-joint value, checking finiteness, sign, length and the robot's ceiling."""
    n = default.shape[0]
    if value is None:
        return default.copy()
    if isinstance(value, list):
        if len(value) != n:
            raise _Issue(key, value, f"one value per joint ({n} for this robot) or a single number")
        paths, values = [f"{key}[{i}]" for i in range(n)], [float(v) for v in value]
    else:
        paths, values = [key] * n, [float(value)] * n
    for i, (path, x) in enumerate(zip(paths, values)):
        if not math.isfinite(x) or x < 0.0 or (positive and x == 0.0):
            raise _Issue(path, x, "a finite number > 0" if positive else "a finite number >= 0")
        if upper is not None and x > upper[i]:
            raise _Issue(path, x, f"at most the robot's published limit {upper[i]:g}")
    return np.array(values)


def _point(vec: list[float], key: str) -> None:
    if len(vec) != 3:
        raise _Issue(key, vec, "three numbers [x, y, z] in metres")
    for i, x in enumerate(vec):
        if not _finite(x):
            raise _Issue(f"{key}[{i}]", x, "a finite number (m)")


def _nonneg(value: Any, key: str, unit: str, *, positive: bool = False) -> None:
    if not _finite(value) or value < 0 or (positive and value == 0):
        raise _Issue(key, value, f"a finite {unit} {'> 0' if positive else '>= 0'}")


def _box(box: Box | None, key: str) -> None:
    if box is None:
        return
    for name, vec in (("min", box.min), ("max", box.max)):
        _point(vec, f"{key}.{name}")
    for i in range(3):
        if box.min[i] >= box.max[i]:
            raise _Issue(f"{key}.min[{i}]", box.min[i], f"below {key}.max[{i}] = {box.max[i]!r}")


class Envelope(_Section):
    """Every limit of the safety layer. Build it with :meth:`from_dict`.

    Attributes are the YAML keys; :attr:`limits` and :attr:`period` are the resolved values.
    """

    enabled: bool = True  # False: commands pass unchecked except non-finite ones (which still stop)
    robot: str = "panda"  # registered robot model name
    on_violation: OnViolation = OnViolation.CLAMP
    dt: float | None = None  # s, nominal control period; default: the robot's
    dt_tolerance: float = 0.5  # a cycle longer than dt * (1 + this) is treated as an overrun
    joints: JointParams = JointParams()
    cartesian: CartesianParams = CartesianParams()
    gripper: GripperParams = GripperParams()
    watchdog: WatchdogParams = WatchdogParams()
    obstacles: ObstacleParams = ObstacleParams()
    separation: SeparationParams = SeparationParams()
    caution_fraction: float = 0.9  # level CAUTION once a joint uses this fraction of a limit
    log_capacity: int = 100_000  # interventions kept in memory (oldest dropped first)

    _limits: JointLimits = PrivateAttr()
    _period: float = PrivateAttr()
    _radii: np.ndarray = PrivateAttr()

    @model_validator(mode="after")
    def _resolve(self) -> "Envelope":
        if self.robot not in ROBOT_MODELS:
            raise _Issue("robot", self.robot, f"one of: {', '.join(ROBOT_MODELS.names())}")
        model = get_robot_model(self.robot)
        period = model.control_period if self.dt is None else self.dt
        if not _finite(period) or not 0.0 < period <= 1.0:
            raise _Issue("dt", self.dt, "a finite period in seconds, 0 < dt <= 1")
        for key, val, lo, hi in (
            ("dt_tolerance", self.dt_tolerance, 0.0, 1.0),
            ("caution_fraction", self.caution_fraction, 0.0, 1.0),
        ):
            if not _finite(val) or not lo <= val < hi:
                raise _Issue(key, val, f"a number in [{lo:g}, {hi:g})")
        j = self.joints
        margin = _vector(j.position_margin, np.zeros(model.dof), "joints.position_margin", positive=False)
        q_min = model.q_min + margin
        q_max = model.q_max - margin
        for name, given, robot_lim, default in (("q_min", j.q_min, model.q_min, q_min), ("q_max", j.q_max, model.q_max, q_max)):
            if given is None:
                continue
            if len(given) != model.dof:
                raise _Issue(f"joints.{name}", given, f"one value per joint ({model.dof} for this robot)")
            for i, x in enumerate(given):
                inside = x >= robot_lim[i] if name == "q_min" else x <= robot_lim[i]
                if not _finite(x) or not inside:
                    side = "at least" if name == "q_min" else "at most"
                    raise _Issue(f"joints.{name}[{i}]", x, f"a finite angle (rad) {side} the robot's limit {robot_lim[i]:g}")
            default[:] = given
        for i in range(model.dof):
            if not q_min[i] < q_max[i]:
                if j.q_min is None and j.q_max is None:
                    raise _Issue("joints.position_margin", j.position_margin, f"a margin that leaves joint {i} some range")
                raise _Issue(f"joints.q_min[{i}]", float(q_min[i]), f"below the upper limit {q_max[i]:g} rad")
        v_max = _vector(j.v_max, model.v_max, "joints.v_max", positive=True, upper=model.v_max)
        a_max = _vector(j.a_max, model.a_max, "joints.a_max", positive=True, upper=model.a_max)
        j_max = _vector(j.j_max, model.j_max, "joints.j_max", positive=True, upper=model.j_max)
        max_step = _vector(j.max_step, v_max * period, "joints.max_step", positive=True)
        if not _finite(j.absurd_step_factor) or j.absurd_step_factor <= 1.0:
            raise _Issue("joints.absurd_step_factor", j.absurd_step_factor, "a finite number > 1")
        self._check_cartesian()
        self._radii = self._link_radii(model.dof)
        self._check_obstacles_and_separation()
        g, w = self.gripper, self.watchdog
        if g.max_effort is not None and (not _finite(g.max_effort) or g.max_effort <= 0):
            raise _Issue("gripper.max_effort", g.max_effort, "a finite force > 0 (N)")
        if not _finite(w.command_timeout) or w.command_timeout <= 0:
            raise _Issue("watchdog.command_timeout", w.command_timeout, "a finite time > 0 (s)")
        if w.max_missed_state_reads < 1:
            raise _Issue("watchdog.max_missed_state_reads", w.max_missed_state_reads, "an integer >= 1")
        if w.max_tracking_error is not None and (not _finite(w.max_tracking_error) or w.max_tracking_error <= 0):
            raise _Issue("watchdog.max_tracking_error", w.max_tracking_error, "a finite angle > 0 (rad)")
        if self.log_capacity < 1:
            raise _Issue("log_capacity", self.log_capacity, "an integer >= 1")
        arrays = [q_min, q_max, v_max, a_max, j_max, max_step]
        for arr in arrays:
            arr.setflags(write=False)
        self._limits = JointLimits(model.joint_names, *arrays)
        self._period = float(period)
        return self

    def _check_cartesian(self) -> None:
        c = self.cartesian
        _box(c.tcp_box, "cartesian.tcp_box")
        _box(c.elbow_box, "cartesian.elbow_box")
        for k, plane in enumerate(c.planes):
            key = f"cartesian.planes[{k}]"
            if len(plane.normal) != 3 or not all(_finite(x) for x in plane.normal) or np.linalg.norm(plane.normal) == 0.0:
                raise _Issue(f"{key}.normal", plane.normal, "three finite numbers, not all zero")
            if not _finite(plane.offset):
                raise _Issue(f"{key}.offset", plane.offset, "a finite distance (m)")
        for key in ("tcp_speed_max", "tcp_speed_max_reduced"):
            val = getattr(c, key)
            if val is not None and (not _finite(val) or val <= 0):
                raise _Issue(f"cartesian.{key}", val, "a finite speed > 0 (m/s)")
        if c.tcp_speed_max is not None and c.tcp_speed_max_reduced is not None and c.tcp_speed_max_reduced > c.tcp_speed_max:
            raise _Issue("cartesian.tcp_speed_max_reduced", c.tcp_speed_max_reduced, f"at most tcp_speed_max = {c.tcp_speed_max!r}")
        if c.tool_cone_deg is not None and (not _finite(c.tool_cone_deg) or not 0.0 < c.tool_cone_deg <= 180.0):
            raise _Issue("cartesian.tool_cone_deg", c.tool_cone_deg, "an angle in (0, 180] degrees")

    def _link_radii(self, dof: int) -> np.ndarray:
        value, key = self.cartesian.link_radius, "cartesian.link_radius"
        if isinstance(value, list):
            if len(value) != dof + 1:
                raise _Issue(key, value, f"one radius per link segment ({dof + 1} for this robot: base to joint 1, ..., last joint to TCP) or a single number")
            for i, x in enumerate(value):
                _nonneg(x, f"{key}[{i}]", "radius (m)")
            radii = np.array(value, dtype=np.float64)
        else:
            _nonneg(value, key, "radius (m)")
            radii = np.full(dof + 1, float(value))
        radii.setflags(write=False)
        return radii

    def _check_obstacles_and_separation(self) -> None:
        o, s = self.obstacles, self.separation
        _nonneg(o.min_distance, "obstacles.min_distance", "distance (m)")
        for k, sphere in enumerate(o.spheres):
            _point(sphere.centre, f"obstacles.spheres[{k}].centre")
            _nonneg(sphere.radius, f"obstacles.spheres[{k}].radius", "radius (m)", positive=True)
        for k, box in enumerate(o.boxes):
            _box(box, f"obstacles.boxes[{k}]")
        _nonneg(s.human_speed, "separation.human_speed", "speed (m/s)", positive=True)
        _nonneg(s.reaction_time, "separation.reaction_time", "time (s)", positive=True)
        _nonneg(s.data_timeout, "separation.data_timeout", "time (s)", positive=True)
        for key in ("intrusion_distance", "human_uncertainty", "robot_uncertainty", "caution_distance"):
            _nonneg(getattr(s, key), f"separation.{key}", "distance (m)")
        if s.enabled and self.cartesian.tcp_speed_max_reduced is None:
            raise _Issue("cartesian.tcp_speed_max_reduced", None, "a reduced TCP speed (m/s): separation monitoring slows the arm to it near people")

    def __eq__(self, other: object) -> bool:
        # The resolved arrays are derived from the fields: compare the fields (numpy arrays have no truth value).
        if not isinstance(other, Envelope):
            return NotImplemented
        return type(self) is type(other) and self.model_dump() == other.model_dump()

    __hash__ = None  # type: ignore[assignment]  # lists inside: not hashable, like the YAML it came from

    # The resolved values are read straight from pydantic's private store: ``self._period`` goes
    # through BaseModel.__getattr__ (about 2 us), and a control loop reads ``period`` every cycle.

    @property
    def limits(self) -> JointLimits:
        """The resolved per-joint limits."""
        return self.__pydantic_private__["_limits"]

    @property
    def period(self) -> float:
        """The nominal control period (s)."""
        return self.__pydantic_private__["_period"]

    @property
    def link_radii(self) -> np.ndarray:
        """Capsule radius (m) of each link segment, base to TCP (``dof + 1`` values, read-only)."""
        return self.__pydantic_private__["_radii"]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None, source: str = "<safety envelope>", *, prefix: str = "safety") -> "Envelope":
        """Validate the ``safety:`` section of a params file.

        Args:
            data: the section's mapping (``None`` or ``{}``: every default, for the Panda).
            source: the file it came from, for error messages.
            prefix: key path of the section inside the file.

        Returns:
            A validated, immutable :class:`Envelope`.

        Raises:
            ParamsError: naming ``source``, the key path (e.g. ``safety.joints.v_max[3]``), the
                value and what was expected.
        """
        if data is None:
            data = {}
        if not isinstance(data, Mapping):
            raise ParamsError(source, prefix, data, "a mapping of safety settings")
        try:
            return cls.model_validate(dict(data))
        except ValidationError as exc:
            # Of a union's failed branches, the deepest one says most (``v_max[3]`` beats ``v_max``).
            err = max(exc.errors(), key=lambda e: len(e.get("loc", ())))
            issue = (err.get("ctx") or {}).get("error")
            if isinstance(issue, _Issue):
                raise ParamsError(source, f"{prefix}.{issue.key_path}", issue.value, issue.expected) from None
            path = prefix
            for part in err.get("loc", ()):
                if isinstance(part, int):
                    path += f"[{part}]"
                elif part not in ("float", "list[float]", "int", "Box", "Plane", "Sphere"):  # union branch tags
                    path += f".{part}"
            msg = str(err.get("msg", "a valid value")).removeprefix("Input should be ")
            if err.get("type") == "extra_forbidden":
                msg = "no such key"
            value = None if err.get("type") == "missing" else err.get("input")
            raise ParamsError(source, path, value, msg) from None
