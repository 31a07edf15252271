"""Inference backends, in one registry keyed by short name.

Built in: ``torch`` (:class:`~vla_kit.policy.backends.torch_backend.TorchPolicy`). A new backend
subclasses :class:`~vla_kit.policy.backends.base.PolicyBackend`, implements ``_load`` and
``_infer``, and registers with :func:`register_backend`; a backend whose engine is an optional
dependency imports it inside ``_load`` (via :func:`vla_kit.deps.require`), so registering it costs
nothing where the engine is absent.
"""

from __future__ import annotations

from vla_kit.policy.backends.base import PolicyBackend
from vla_kit.policy.backends.torch_backend import TorchPolicy
from vla_kit.registry import Registry

__all__ = ["BACKENDS", "PolicyBackend", "TorchPolicy", "register_backend", "get_backend"]

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


register_backend(TorchPolicy)
