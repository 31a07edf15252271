"""report.html opens offline: plotly.js once, every figure, no network scripts."""

from __future__ import annotations

import re

import nbformat
import plotly.graph_objects as go
from nbformat.v4 import new_code_cell, new_notebook, new_output

from vla_kit.reports.figures import ReportRenderer
from vla_kit.reports.html import export_html


def _nb_with_figures(n: int):
    nb = new_notebook()
    for i in range(n):
        bundle = ReportRenderer().to_mimebundle(go.Figure(go.Scatter(x=[0, 1], y=[i, i + 1])).to_dict())
        cell = new_code_cell(f"fig{i}")
        cell.outputs = [new_output("display_data", data=bundle)]
        nb.cells.append(cell)
    return nb


def test_renderer_emits_plotly_json_and_an_html_fallback():
    bundle = ReportRenderer().to_mimebundle(go.Figure(go.Bar(x=[1], y=[2])).to_dict())
    assert set(bundle) == {"application/vnd.plotly.v1+json", "text/html"}
    assert "Plotly.newPlot" in bundle["text/html"] and "<script src" not in bundle["text/html"]


def test_export_embeds_plotly_once_and_draws_every_figure(tmp_path):
    path = tmp_path / "nb.ipynb"
    nbformat.write(_nb_with_figures(3), str(path))
    out = export_html(path, tmp_path / "report.html", header={"title": "t", "status": "succeeded", "run": "r1"})
    html = out.read_text()
    assert html.count("plotly.js v") == 1 and html.count("Plotly.newPlot(") == 3
    assert re.findall(r'<(?:script|link)[^>]+(?:src|href)="https?:', html) == []
    assert 'class="status-succeeded"' in html and "r1" in html
    assert not list(tmp_path.glob(".report.html.tmp*"))


def test_export_without_figures_leaves_plotly_out(tmp_path):
    nb = new_notebook()
    nb.cells.append(new_code_cell("1"))
    path = tmp_path / "nb.ipynb"
    nbformat.write(nb, str(path))
    html = export_html(path, tmp_path / "r.html").read_text()
    assert "plotly.js v" not in html and len(html) < 1_000_000
