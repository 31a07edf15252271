from __future__ import annotations

import pytest

from vla_kit.errors import RegistryError
from vla_kit.registry import Registry


def test_duplicate_registration_is_rejected():
    reg: Registry[int] = Registry("widget")
    reg.register("a", 1)
    with pytest.raises(RegistryError, match="already registered"):
        reg.register("a", 2)
    assert reg.get("a") == 1


def test_unknown_name_lists_what_exists():
    reg: Registry[int] = Registry("widget")
    reg.register("b", 1)
    reg.register("a", 2)
    with pytest.raises(RegistryError) as info:
        reg.get("c")
    assert info.value.available == ["a", "b"] and "unknown widget 'c'; available: a, b" in str(info.value)
    assert reg.names() == ["b", "a"] and "a" in reg and len(reg) == 2


def test_unregister_removes_and_unknown_unregister_fails():
    reg: Registry[int] = Registry("widget")
    reg.register("a", 1)
    reg.unregister("a")
    assert "a" not in reg
    with pytest.raises(RegistryError):
        reg.unregister("a")
