"""Export an executed notebook to a self-contained ``report.html`` that opens offline.

The page embeds its CSS, images and plotly.js (once, in the head), loads nothing from a network,
and opens with a header naming the stage, deployment, run and status.
"""

from __future__ import annotations

import html as htmllib
from pathlib import Path
from typing import Mapping

import nbformat

from vla_kit.reports.context import write_text_atomic

__all__ = ["export_html", "TEMPLATE_DIR"]

TEMPLATE_DIR = Path(__file__).with_name("templates")


def _header(fields: Mapping[str, object]) -> str:
    title = htmllib.escape(str(fields.get("title", "vla_kit report")))
    rows = []
    for key, value in fields.items():
        if key == "title" or value is None or value == "":
            continue
        text = htmllib.escape(str(value))
        if key == "status":
            text = f'<span class="status-{text}">{text}</span>'
        rows.append(f"<tr><td>{htmllib.escape(key)}</td><td>{text}</td></tr>")
    return f"<h1>{title}</h1><table>{''.join(rows)}</table>"


def export_html(notebook: Path | str, out: Path | str, *, header: Mapping[str, object] | None = None) -> Path:
    """Write ``out`` (HTML) from the executed ``notebook``.

    Args:
        notebook: an executed ``.ipynb``.
        out: the HTML file to write (written to a temporary name, then renamed).
        header: fields shown at the top (``title``, ``status``, ``run``, ...).

    Returns:
        ``out`` as a Path.
    """
    import plotly.offline
    from nbconvert import HTMLExporter

    nb = nbformat.read(str(notebook), as_version=4)
    has_plotly = any(
        "text/html" in o.get("data", {}) and "Plotly.newPlot" in "".join(o["data"]["text/html"])
        for c in nb.cells if c.get("cell_type") == "code" for o in c.get("outputs", [])
    )
    exporter = HTMLExporter(
        template_name="vla_report",
        extra_template_basedirs=[str(TEMPLATE_DIR)],
        embed_images=True,
        exclude_input_prompt=False,
    )
    resources = {
        "metadata": {"name": str((header or {}).get("title", Path(notebook).stem))},
        "plotly_js": plotly.offline.get_plotlyjs() if has_plotly else "",
        "vla_header": _header(header or {}),
    }
    body, _ = exporter.from_notebook_node(nb, resources=resources)
    out = Path(out)
    write_text_atomic(out, body)
    return out
