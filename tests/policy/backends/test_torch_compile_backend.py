"""The torch-compile backend: same weights and answers as torch eager, and a clear error where inductor cannot compile.

Compiling costs seconds per graph on one core, so these tests use a one-layer, narrow variant of
the tiny preset; the wrapper does not depend on the network's size.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vla_kit.errors import BackendError, InputError
from vla_kit.policy import build_model, load_policy, make_spec, model_config, save_artifact
from vla_kit.policy.backends import TorchCompilePolicy
from vla_kit.policy.normalization import NormStats

# Importing inductor touches torch.jit.script_method, which torch itself now deprecates.
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated:DeprecationWarning")


@pytest.fixture
def small_artifact(tmp_path, tokenizer):
    def make(d_model: int):
        cfg = model_config("tiny", vocab_size=tokenizer.vocab_size, d_model=d_model, num_layers=1, num_heads=2, stem_channels=8)
        spec = make_spec(cfg, tokenizer, proprio_stats=NormStats.identity(14), action_stats=NormStats.identity(7))
        return save_artifact(tmp_path / f"p{d_model}", build_model(cfg, seed=0), spec)

    return make


@pytest.fixture(autouse=True)
def fresh_dynamo():
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


def test_compiled_policy_matches_torch_eager(small_artifact, make_obs):
    path = small_artifact(32)
    compiled = load_policy(path, backend="torch-compile")
    assert isinstance(compiled, TorchCompilePolicy) and compiled.mode == "default"
    obs = make_obs(3)
    inputs, _ = compiled.processor.preprocess([obs])
    np.testing.assert_allclose(compiled.infer(inputs), load_policy(path).infer(inputs), rtol=0, atol=1e-5)
    assert compiled.num_parameters == load_policy(path).num_parameters


def test_unknown_compile_mode_is_rejected_before_compiling(small_artifact):
    with pytest.raises(InputError, match="mode: expected one of .*'max-autotune'"):
        load_policy(small_artifact(32), backend="torch-compile", mode="fastest")


def test_host_without_a_working_compiler_fails_at_load_with_a_backend_error(small_artifact):
    from torch._inductor import config as inductor_config

    # fx_graph_cache off: a graph cached on disk by an earlier run would need no compiler.
    with inductor_config.patch({"cpp.cxx": ("/nonexistent/c++",), "fx_graph_cache": False}):
        message = r"torch.compile\(mode='default'\) failed on cpu: .*No working C\+\+ compiler.*backend='torch'"
        with pytest.raises(BackendError, match=message):
            load_policy(small_artifact(48), backend="torch-compile")


def test_missing_compiler_is_reported_without_compiling():
    from torch._inductor import config as inductor_config

    assert TorchCompilePolicy.unavailable() is None  # gcc is on this image's PATH
    with inductor_config.patch({"cpp.cxx": (None, "/nonexistent/c++")}):
        assert "no C++ compiler for inductor's CPU kernels (looked for ['/nonexistent/c++'])" in TorchCompilePolicy.unavailable()
