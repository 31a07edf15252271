"""Plotly figures that are interactive in Jupyter and still there in the offline ``report.html``.

nbconvert's HTML exporter ignores plotly's own mimetype (``application/vnd.plotly.v1+json``), so
a figure shown with plotly's default renderer vanishes from exported reports. Our renderer emits
both that mimetype (JupyterLab and VS Code render it natively) and a ``text/html`` fallback that
draws with a global ``Plotly`` — which :mod:`vla_kit.reports.html` embeds once per report.
"""

from __future__ import annotations

from typing import Any

import plotly.io as pio
from plotly.io._base_renderers import MimetypeRenderer

__all__ = ["ReportRenderer", "install_renderer", "RENDERER_NAME", "PLOTLY_CONFIG"]

RENDERER_NAME = "vla_kit"
PLOTLY_CONFIG: dict[str, Any] = {"displaylogo": False, "responsive": True}


class ReportRenderer(MimetypeRenderer):
    """Renders a figure as plotly JSON (for Jupyter) plus an HTML div (for exported reports)."""

    def to_mimebundle(self, fig_dict: dict) -> dict:
        html = pio.to_html(
            fig_dict,
            include_plotlyjs=False,
            full_html=False,
            config=PLOTLY_CONFIG,
            validate=False,
            default_width="100%",
        )
        return {
            "application/vnd.plotly.v1+json": {
                "data": fig_dict.get("data", []),
                "layout": fig_dict.get("layout", {}),
                "config": PLOTLY_CONFIG,
            },
            "text/html": html,
        }


def install_renderer() -> None:
    """Register the renderer (once) and make it plotly's default for this process."""
    if RENDERER_NAME not in pio.renderers:
        pio.renderers[RENDERER_NAME] = ReportRenderer()
    pio.renderers.default = RENDERER_NAME
