"""The safety layer between a policy and a robot arm: envelope (limits as data), pure checks, the layer.

Pure numpy (and pydantic for the envelope); it never imports a policy, a simulator or a notebook.
"""

from vla_kit.safety.envelope import Envelope, JointLimits, OnViolation
from vla_kit.safety.layer import SafetyLayer
from vla_kit.safety.state import JointCommand, Memory, RobotState
from vla_kit.safety.monitor import MonitorReport, StreamMonitor
from vla_kit.safety.records import Check, Decision, Level, Violation

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
]
