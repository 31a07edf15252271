"""Simulated tabletop: a PyBullet Panda, coloured cubes, task families and a scripted expert.

Start with :func:`make_env` (or :class:`TabletopEnv`), drive it with ``EE_DELTA`` actions, and
run whole episodes with :func:`run_episode`. :class:`ScriptedExpert` solves every built-in task
through the same action interface, so its demonstrations are learnable.
"""

from vla_kit.sim.env import PROPRIO_DIM, PROPRIO_LAYOUT, SimConfig, StepResult, TabletopEnv, make_env
from vla_kit.sim.expert import ScriptedExpert
from vla_kit.sim.layout import COLOURS
from vla_kit.sim.runner import EpisodeResult, Policy, StepRecord, run_episode
from vla_kit.sim.state import SimState, closest_colour, distance_to_cube
from vla_kit.sim.tasks import Task, TaskSpec, get_task, register_task, task_names

__all__ = [
    "COLOURS",
    "PROPRIO_DIM",
    "PROPRIO_LAYOUT",
    "SimConfig",
    "StepResult",
    "TabletopEnv",
    "make_env",
    "ScriptedExpert",
    "EpisodeResult",
    "Policy",
    "StepRecord",
    "run_episode",
    "SimState",
    "closest_colour",
    "distance_to_cube",
    "Task",
    "TaskSpec",
    "get_task",
    "register_task",
    "task_names",
]
