"""Policies: the reference VLA, its tokenizer, the artifact format and the inference backends.

The usual path::

    tok = Tokenizer.build(instructions)
    cfg = model_config("tiny", vocab_size=tok.vocab_size)
    model = build_model(cfg, seed=0)
    ...  # train
    spec = make_spec(cfg, tok, proprio_stats=compute_norm_stats(proprio),
                     action_stats=compute_norm_stats(actions), preset="tiny", provenance={...})
    save_artifact(run_dir / "artifacts" / "policy", model, spec)
    policy = load_policy(run_dir)            # verifies checksums first
    chunk = policy.predict(observation)      # ActionChunk, EE_DELTA units, [T, 7]
"""

from __future__ import annotations

from vla_kit.policy.artifact import resolve_artifact_dir, save_artifact, verify_artifact, write_artifact
from vla_kit.policy.backends import BACKENDS, PolicyBackend, TorchPolicy, register_backend
from vla_kit.policy.config import ModelConfig, model_config, preset_names
from vla_kit.policy.load import load_policy
from vla_kit.policy.model import VLAModel, build_model, count_parameters
from vla_kit.policy.normalization import NormStats, compute_norm_stats
from vla_kit.policy.processing import ModelInputs, Processor
from vla_kit.policy.protocol import Policy
from vla_kit.policy.spec import PolicySpec, make_spec
from vla_kit.policy.tokenizer import Tokenizer

__all__ = [
    "load_policy",
    "save_artifact",
    "write_artifact",
    "verify_artifact",
    "resolve_artifact_dir",
    "Policy",
    "PolicyBackend",
    "TorchPolicy",
    "BACKENDS",
    "register_backend",
    "ModelConfig",
    "model_config",
    "preset_names",
    "VLAModel",
    "build_model",
    "count_parameters",
    "NormStats",
    "compute_norm_stats",
    "ModelInputs",
    "Processor",
    "PolicySpec",
    "make_spec",
    "Tokenizer",
]
