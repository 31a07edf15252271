"""Every name in a public module's __all__ exists and has a docstring (httpx-style export check)."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import vla_kit

MODULES = sorted(
    m.name for m in pkgutil.walk_packages(vla_kit.__path__, "vla_kit.")
    if not m.name.split(".")[-1].startswith("_") and m.name not in ("vla_kit.cli",)
)


@pytest.mark.parametrize("name", MODULES)
def test_public_names_exist_and_are_documented(name):
    mod = importlib.import_module(name)
    assert mod.__doc__, f"{name} has no module docstring"
    for attr in getattr(mod, "__all__", []):
        obj = getattr(mod, attr)
        if inspect.isfunction(obj) or inspect.isclass(obj):
            assert inspect.getdoc(obj), f"{name}.{attr} has no docstring"
