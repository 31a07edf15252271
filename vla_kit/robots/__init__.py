"""Robots: kinematic models with their published limits (more robot plumbing joins this package)."""

from vla_kit.robots.kinematics import Kinematics, RobotModel
from vla_kit.robots.models import ROBOT_MODELS, get_robot_model, panda_model, ur5_model

__all__ = ["Kinematics", "RobotModel", "ROBOT_MODELS", "get_robot_model", "panda_model", "ur5_model"]
