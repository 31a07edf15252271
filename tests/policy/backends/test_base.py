"""The backend template: registry, weights-file check, output-shape check, shared post-processing.

The doubles register through the real registry, the way a new backend would.
"""

from __future__ import annotations

import numpy as np
import pytest

from vla_kit.errors import ArtifactError, RegistryError
from vla_kit.policy import BACKENDS, Policy, load_policy, register_backend
from vla_kit.policy.artifact import WEIGHTS_FILE
from vla_kit.policy.backends import PolicyBackend, TorchPolicy, get_backend


class ZeroPolicy(PolicyBackend):
    """Answers zeros in normalised units, i.e. the dataset's mean action."""

    name = "zero"
    weights_file = WEIGHTS_FILE

    @classmethod
    def _load(cls, artifact_dir, spec, **options):
        return cls(spec, source=str(artifact_dir))

    @property
    def num_parameters(self) -> int:
        return 0

    def _infer(self, inputs):
        return np.zeros((inputs.batch_size, self.spec.chunk_length, self.spec.model.action_dim))


class WrongShapePolicy(ZeroPolicy):
    """A broken export: one action too few per chunk."""

    name = "wrong-shape"

    def _infer(self, inputs):
        return np.zeros((inputs.batch_size, self.spec.chunk_length - 1, self.spec.model.action_dim))


class OnnxOnlyPolicy(ZeroPolicy):
    """Needs a file the torch artifact does not have."""

    name = "onnx-only"
    weights_file = "model.onnx"


@pytest.fixture
def doubles():
    for cls in (ZeroPolicy, WrongShapePolicy, OnnxOnlyPolicy):
        register_backend(cls)
    yield
    for cls in (ZeroPolicy, WrongShapePolicy, OnnxOnlyPolicy):
        BACKENDS.unregister(cls.name)


def test_torch_is_the_built_in_backend():
    assert get_backend("torch") is TorchPolicy


def test_unknown_backend_lists_the_registered_ones(artifact):
    with pytest.raises(RegistryError, match="unknown policy backend 'tflite'; available: .*onnxruntime.*torch"):
        load_policy(artifact, backend="tflite")


def test_registering_a_name_twice_is_refused():
    with pytest.raises(RegistryError, match="already registered"):
        register_backend(TorchPolicy)


def test_every_backend_shares_the_post_processing(doubles, artifact, spec, make_obs):
    chunk = load_policy(artifact, backend="zero").predict(make_obs())
    expected = np.array(spec.normalization.action.mean, dtype=np.float32)
    expected[-1] = np.clip(expected[-1], 0, 1)
    np.testing.assert_allclose(chunk.actions, np.broadcast_to(expected, (spec.chunk_length, 7)), rtol=1e-6)
    assert chunk.space is spec.action_space


def test_backend_answering_the_wrong_shape_is_an_artifact_error(doubles, artifact, make_obs):
    with pytest.raises(ArtifactError, match="wrong-shape backend returned shape"):
        load_policy(artifact, backend="wrong-shape").predict(make_obs())


def test_backend_whose_weights_file_is_absent_says_which_file(doubles, artifact):
    with pytest.raises(ArtifactError, match="model.onnx: missing: the 'onnx-only' backend needs model.onnx"):
        load_policy(artifact, backend="onnx-only")


def test_a_loaded_backend_is_a_policy_and_a_callable(doubles, artifact, make_obs):
    policy = load_policy(artifact, backend="zero")
    assert isinstance(policy, Policy)
    obs = make_obs()
    np.testing.assert_array_equal(policy(obs).actions, policy.predict(obs).actions)
