"""Learning and judging policies: behaviour cloning, closed-loop evaluation, grounding tests."""

from vla_kit.learn.bc import TrainConfig, TrainResult, train_policy
from vla_kit.learn.evaluate import EvalReport, GroundingReport, Rate, evaluate_policy, grounding_test, wilson_interval

__all__ = [
    "TrainConfig",
    "TrainResult",
    "train_policy",
    "EvalReport",
    "GroundingReport",
    "Rate",
    "evaluate_policy",
    "grounding_test",
    "wilson_interval",
]
