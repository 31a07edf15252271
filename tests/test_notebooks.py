"""Stage notebooks as committed: stripped, one parameters cell, thin cells, parameters = params model."""

from __future__ import annotations

import ast

import nbformat
import pytest

from tests.conftest import ROOT
from vla_kit.params import COMMON_NOTEBOOK_KEYS, STAGES

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def test_every_stage_has_its_notebook():
    for name in STAGES.names():
        assert (ROOT / "notebooks" / STAGES.get(name).notebook).is_file(), name


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_committed_without_outputs(path):
    nb = nbformat.read(str(path), as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, cell.source[:60]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_has_one_parameters_cell_matching_its_params_section(path):
    nb = nbformat.read(str(path), as_version=4)
    tagged = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1
    names = {t.id for node in ast.parse(tagged[0].source).body if isinstance(node, ast.Assign) for t in node.targets}
    spec = next(STAGES.get(s) for s in STAGES.names() if STAGES.get(s).notebook == path.name)
    assert names == set(COMMON_NOTEBOOK_KEYS) | set(spec.params_model.model_fields) | ({"safety"} if spec.uses_safety else set())


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_cells_are_thin(path):
    nb = nbformat.read(str(path), as_version=4)
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        tree = ast.parse(cell.source)
        assert not any(isinstance(n, (ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef)) for n in ast.walk(tree)), cell.source[:60]
        if "parameters" not in cell.get("metadata", {}).get("tags", []):
            assert len(cell.source.splitlines()) <= 15, cell.source[:60]
    assert nb.cells[0].cell_type == "markdown"
