"""The PyTorch eager backend: the reference every other backend is compared against."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from vla_kit.errors import ArtifactError
from vla_kit.policy.artifact import WEIGHTS_FILE
from vla_kit.policy.backends.base import PolicyBackend
from vla_kit.policy.model import VLAModel, build_model
from vla_kit.policy.processing import ModelInputs
from vla_kit.policy.spec import PolicySpec

__all__ = ["TorchPolicy"]


class TorchPolicy(PolicyBackend):
    """A :class:`~vla_kit.policy.model.VLAModel` run eagerly, in eval mode, without autograd.

    Args:
        model: the network; its config must equal ``spec.model``.
        spec: the policy spec.
        source: where the weights came from.

    Attributes:
        model: the network (exposed for optimisation passes and export).
    """

    name = "torch"
    weights_file = WEIGHTS_FILE

    def __init__(self, model: VLAModel, spec: PolicySpec, *, source: str = "<in-memory model>") -> None:
        if model.config != spec.model:
            raise ArtifactError(source, "model config differs from the spec's model section")
        super().__init__(spec, source=source)
        self.model = model

    @classmethod
    def from_model(cls, model: VLAModel, spec: PolicySpec) -> "TorchPolicy":
        """Wrap an in-memory model (e.g. during training, for evaluation rollouts) without saving it.

        The model is shared, not copied: predictions see its current weights. Each prediction
        runs in eval mode and leaves the model in the mode it found it in.

        Raises:
            ArtifactError: ``model.config`` differs from ``spec.model``.
        """
        return cls(model, spec)

    @classmethod
    def _load(cls, artifact_dir: Path, spec: PolicySpec, *, device: str = "cpu") -> "TorchPolicy":
        """Build the model from ``spec.model`` and load ``model.safetensors`` into it.

        Args:
            artifact_dir: the verified artifact folder.
            spec: its spec.
            device: torch device to run on (``"cpu"``, ``"cuda"``, ``"cuda:1"``).
        """
        path = artifact_dir / WEIGHTS_FILE
        try:
            tensors = load_file(str(path))
        except SafetensorError as exc:
            raise ArtifactError(path, f"unreadable safetensors file: {exc}") from None
        # A seeded build leaves the caller's torch RNG untouched; its init is then overwritten.
        model = build_model(spec.model, seed=0)
        try:
            model.load_state_dict(tensors, strict=True)
        except RuntimeError as exc:
            raise ArtifactError(path, f"weights do not fit the architecture in policy.json: {exc}") from None
        return cls(model.to(device).eval(), spec, source=str(artifact_dir))

    @property
    def device(self) -> torch.device:
        """Where the model's weights are now (a training loop may move a shared model)."""
        return next(self.model.parameters()).device

    @property
    def num_parameters(self) -> int:
        """Number of weights in the network."""
        return sum(p.numel() for p in self.model.parameters())

    def _infer(self, inputs: ModelInputs) -> np.ndarray:
        tensors = [torch.from_numpy(np.ascontiguousarray(a)).to(self.device) for a in inputs.as_dict().values()]
        # A model shared with a training loop may be in train mode: predict in eval mode (no
        # dropout) and hand it back the way it was.
        was_training = self.model.training
        if was_training:
            self.model.eval()
        try:
            with torch.inference_mode():
                return self.model(*tensors).to("cpu", torch.float32).numpy()
        finally:
            if was_training:
                self.model.train()
