from __future__ import annotations

import pytest

from vla_kit import deps
from vla_kit.errors import MissingDependencyError, RegistryError


def test_missing_optional_package_names_the_extra(monkeypatch):
    monkeypatch.setitem(deps.OPTIONAL, "ghost", deps.OptionalDependency("vla_kit_ghost_pkg", "ghost", "Ghost inference"))
    assert not deps.is_available("ghost")
    with pytest.raises(MissingDependencyError) as info:
        deps.require("ghost")
    assert "pip install 'vla_kit[ghost]'" in str(info.value) and info.value.exit_code == 2


def test_unknown_optional_dependency_lists_the_known_ones():
    with pytest.raises(RegistryError, match="tensorrt"):
        deps.is_available("cuda-magic")


def test_install_hint_says_where_tensorrt_runs():
    assert "NVIDIA GPU" in deps.install_hint("tensorrt")
