"""The PyTorch eager backend: the reference every other backend is compared against.

It also runs the reduced-precision torch artifacts (``bf16``, ``torch-int8-dynamic``): the weights
file records its precision (see :mod:`vla_kit.policy.backends.torch_precision`), and the
``dtype`` option overrides the compute dtype of a float artifact (``load_policy(p,
dtype="bfloat16")`` runs float32 weights under bf16 autocast).
"""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from vla_kit.errors import ArtifactError, InputError
from vla_kit.policy.artifact import WEIGHTS_FILE
from vla_kit.policy.backends.base import PolicyBackend
from vla_kit.policy.backends.torch_precision import Precision, load_into, read_weights
from vla_kit.policy.model import VLAModel, build_model
from vla_kit.policy.processing import ModelInputs
from vla_kit.policy.spec import PolicySpec

__all__ = ["TorchPolicy"]

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


class TorchPolicy(PolicyBackend):
    """A :class:`~vla_kit.policy.model.VLAModel` run eagerly, in eval mode, without autograd.

    Args:
        model: the network; its config must equal ``spec.model``.
        spec: the policy spec.
        source: where the weights came from.
        dtype: compute dtype: ``"float32"``, or ``"bfloat16"`` to run under bf16 autocast.
        precision: how the loaded weights were stored (int8 weights run as int8 whatever ``dtype``).

    Attributes:
        model: the network (exposed for optimisation passes and export).
        dtype: the compute dtype (``"float32"`` or ``"bfloat16"``).
        precision: the stored precision of the weights it was loaded from.
    """

    name = "torch"
    weights_file = WEIGHTS_FILE

    def __init__(
        self,
        model: VLAModel,
        spec: PolicySpec,
        *,
        source: str = "<in-memory model>",
        dtype: Literal["float32", "bfloat16"] = "float32",
        precision: Precision = Precision.FLOAT32,
    ) -> None:
        if model.config != spec.model:
            raise ArtifactError(source, "model config differs from the spec's model section")
        if dtype not in _DTYPES:
            raise InputError("dtype", f"expected one of {list(_DTYPES)}, got {dtype!r}")
        super().__init__(spec, source=source)
        self.model = model
        self.dtype = dtype
        self.precision = precision

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
    def _load(
        cls, artifact_dir: Path, spec: PolicySpec, *, device: str = "cpu", dtype: Literal["float32", "bfloat16"] | None = None
    ) -> "TorchPolicy":
        """Build the model from ``spec.model`` and load ``model.safetensors`` into it.

        Args:
            artifact_dir: the verified artifact folder.
            spec: its spec.
            device: torch device to run on (``"cpu"``, ``"cuda"``, ``"cuda:1"``).
            dtype: compute dtype; ``None`` follows the weights (``"bfloat16"`` for a ``bf16``
                artifact, else ``"float32"``).

        Raises:
            ArtifactError: unreadable weights, or weights that do not fit ``spec.model``.
            InputError: ``dtype`` is unknown, or ``"bfloat16"`` with int8 weights.
        """
        path = artifact_dir / WEIGHTS_FILE
        tensors, precision = read_weights(path)
        if dtype is None:
            dtype = "bfloat16" if precision is Precision.BFLOAT16 else "float32"
        if precision is Precision.INT8_DYNAMIC and dtype != "float32":
            raise InputError("dtype", f"int8-dynamic weights quantise float32 activations; got dtype={dtype!r}")
        # A seeded build leaves the caller's torch RNG untouched; its init is then overwritten.
        model = load_into(build_model(spec.model, seed=0), tensors, precision, path)
        return cls(model.to(device).eval(), spec, source=str(artifact_dir), dtype=dtype, precision=precision)

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
            with torch.inference_mode(), self._autocast():
                return self._forward(*tensors).to("cpu", torch.float32).numpy()
        finally:
            if was_training:
                self.model.train()

    def _forward(self, *tensors: torch.Tensor) -> torch.Tensor:
        """The network call (``torch-compile`` swaps in the compiled module)."""
        return self.model(*tensors)

    def _autocast(self):
        if self.dtype == "float32":
            return nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=_DTYPES[self.dtype])
