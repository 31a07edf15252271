"""Inference backends, in one registry keyed by short name.

Built in:

==================  =======================  ===============================================
name                reads                    engine
==================  =======================  ===============================================
``torch``           ``model.safetensors``    PyTorch eager (fp32, bf16 autocast, int8 torchao)
``torch-compile``   ``model.safetensors``    ``torch.compile`` (inductor), compiled at load
``onnxruntime``     ``model.onnx``           ONNX Runtime, CPU EP by default
``openvino``        ``model.xml``/``.onnx``  OpenVINO (optional extra ``openvino``)
``tensorrt``        ``model.engine``         TensorRT 10 on CUDA (optional extra ``tensorrt``)
==================  =======================  ===============================================

A new backend
subclasses :class:`~vla_kit.policy.backends.base.PolicyBackend`, implements ``_load`` and
``_infer``, and registers with :func:`register_backend`; a backend whose engine is an optional
dependency imports it inside ``_load`` (via :func:`vla_kit.deps.require`), so registering it costs
nothing where the engine is absent.
"""

from __future__ import annotations

from vla_kit.policy.backends.base import PolicyBackend
from vla_kit.policy.backends.onnxruntime_backend import OrtPolicy
from vla_kit.policy.backends.openvino_backend import OpenVinoPolicy
from vla_kit.policy.backends.tensorrt_backend import TensorRtPolicy
from vla_kit.policy.backends.torch_backend import TorchPolicy
from vla_kit.policy.backends.torch_compile_backend import TorchCompilePolicy
from vla_kit.registry import Registry

__all__ = [
    "BACKENDS",
    "PolicyBackend",
    "TorchPolicy",
    "TorchCompilePolicy",
    "OrtPolicy",
    "OpenVinoPolicy",
    "TensorRtPolicy",
    "register_backend",
    "get_backend",
]

BACKENDS: Registry[type[PolicyBackend]] = Registry("policy backend")


def register_backend(cls: type[PolicyBackend]) -> type[PolicyBackend]:
    """Register a backend class under its ``name``; usable as a class decorator.

    Raises:
        RegistryError: the name is already taken.
    """
    return BACKENDS.register(cls.name, cls)


def get_backend(name: str) -> type[PolicyBackend]:
    """The backend class registered as ``name``.

    Raises:
        RegistryError: unknown name; the message lists the registered ones.
    """
    return BACKENDS.get(name)


for _cls in (TorchPolicy, TorchCompilePolicy, OrtPolicy, OpenVinoPolicy, TensorRtPolicy):
    register_backend(_cls)
