"""The safety layer between a policy and a robot arm: envelope (limits as data), pure checks, the layer.

numpy, with the per-cycle arithmetic compiled by numba (pydantic for the envelope); it never
imports a policy, a simulator or a notebook. :func:`control_gc` keeps CPython's full-heap garbage
collections (tens of milliseconds) out of a control loop.
Also here: speed-and-separation monitoring (:mod:`~vla_kit.safety.separation`), whole-chunk
validation (:mod:`~vla_kit.safety.chunk`) and the vectorised trajectory audit
(:mod:`~vla_kit.safety.audit`); ``vla-kit safety filter|audit`` is :mod:`~vla_kit.safety.cli`.
"""

from vla_kit.safety.envelope import Envelope, JointLimits, OnViolation
from vla_kit.safety.layer import SafetyLayer
from vla_kit.safety.state import JointCommand, Memory, RobotState
from vla_kit.safety.monitor import MonitorReport, StreamMonitor
from vla_kit.safety.records import Check, Decision, Level, Violation
from vla_kit.safety.chunk import ChunkReport, ChunkVerdict, StepAction, StepReport, validate_chunk
from vla_kit.safety.audit import AuditReport, audit_trajectory
from vla_kit.safety.separation import SeparationMonitor, SeparationVerdict, protective_separation_distance
from vla_kit.safety.realtime import ControlGC, control_gc

__all__ = [
    "Envelope",
    "JointLimits",
    "OnViolation",
    "SafetyLayer",
    "JointCommand",
    "RobotState",
    "Memory",
    "Decision",
    "Level",
    "Check",
    "Violation",
    "StreamMonitor",
    "MonitorReport",
    "ChunkReport",
    "ChunkVerdict",
    "StepAction",
    "StepReport",
    "validate_chunk",
    "AuditReport",
    "audit_trajectory",
    "SeparationMonitor",
    "SeparationVerdict",
    "ControlGC",
    "control_gc",
    "protective_separation_distance",
]
