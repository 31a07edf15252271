"""The ``torch-compile`` backend: the torch weights, run through ``torch.compile`` (inductor).

It reads the same ``model.safetensors`` as ``torch`` (any precision the torch backend reads) and
compiles the network once at load time, on a batch of one, so that a host that cannot compile
(no C compiler for inductor's CPU kernels, an unsupported GPU) fails at ``load_policy`` with a
:class:`~vla_kit.errors.BackendError` instead of at the first control step. Another batch size
compiles once more on first use (``dynamic=True`` compiles one shape-generic graph instead).

Compiling costs tens of seconds on a small CPU; what it buys depends on the host (on two shared
cores and the ``tiny`` preset it buys nothing: measure with the profile stage before choosing it).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from vla_kit.errors import BackendError, InputError
from vla_kit.policy.backends.torch_backend import TorchPolicy
from vla_kit.policy.processing import ModelInputs
from vla_kit.policy.spec import PolicySpec

__all__ = ["TorchCompilePolicy", "COMPILE_MODES"]

COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


class TorchCompilePolicy(TorchPolicy):
    """A :class:`TorchPolicy` whose forward pass is ``torch.compile(model)``.

    Attributes:
        compiled: the compiled module (shares its weights with ``model``).
        mode: the ``torch.compile`` mode it was compiled with.
    """

    name = "torch-compile"

    @classmethod
    def unavailable(cls) -> str | None:
        """Why inductor cannot compile CPU kernels here (no C++ compiler on PATH), or ``None``.

        A cheap check for the optimize stage's table; :meth:`load` still compiles for real.
        """
        from torch._inductor import config  # noqa: PLC0415

        compilers = [c for c in config.cpp.cxx if c]
        if not any(shutil.which(c) for c in compilers):
            return f"no C++ compiler for inductor's CPU kernels (looked for {compilers}); install g++ or set CXX"
        return None

    @classmethod
    def _load(
        cls,
        artifact_dir: Path,
        spec: PolicySpec,
        *,
        device: str = "cpu",
        dtype: Literal["float32", "bfloat16"] | None = None,
        mode: str = "default",
        dynamic: bool | None = None,
    ) -> "TorchCompilePolicy":
        """Load like ``torch``, then compile and run once.

        Args:
            artifact_dir: the verified artifact folder.
            spec: its spec.
            device: torch device.
            dtype: compute dtype, as for ``torch``.
            mode: a ``torch.compile`` mode, one of :data:`COMPILE_MODES`.
            dynamic: passed to ``torch.compile``: ``True`` for one graph for every batch size.

        Raises:
            InputError: unknown ``mode``.
            BackendError: inductor could not compile the model here; the message says why.
        """
        if mode not in COMPILE_MODES:
            raise InputError("mode", f"expected one of {list(COMPILE_MODES)}, got {mode!r}")
        policy = super()._load(artifact_dir, spec, device=device, dtype=dtype)
        policy.mode = mode
        policy.compiled = torch.compile(policy.model, mode=mode, dynamic=dynamic)
        try:
            policy._infer(_warmup_inputs(spec))
        except Exception as exc:  # dynamo/inductor raise many types; all mean "cannot compile here"
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise BackendError(
                cls.name,
                f"torch.compile(mode={mode!r}) failed on {device}: {type(exc).__name__}: {reason[:500]} "
                "(inductor needs a working C/C++ compiler for CPU kernels; use backend='torch' to run uncompiled)",
            ) from exc
        return policy

    def _forward(self, *tensors: torch.Tensor) -> torch.Tensor:
        return self.compiled(*tensors)


def _warmup_inputs(spec: PolicySpec) -> ModelInputs:
    m = spec.model
    mask = np.zeros((1, m.max_tokens), dtype=bool)
    mask[:, 0] = True
    return ModelInputs(
        images=np.zeros((1, m.num_cameras, m.image_height, m.image_width, m.channels), dtype=np.uint8),
        token_ids=np.ones((1, m.max_tokens), dtype=np.int64) * mask,
        token_mask=mask,
        proprio=np.zeros((1, m.proprio_dim), dtype=np.float32),
    )
