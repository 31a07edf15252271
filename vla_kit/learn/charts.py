"""Figures and tables of the ``train`` stage: frames, dataset stats, learning curves, success, grounding, filmstrip."""

from __future__ import annotations

import base64
import io
from typing import Sequence

import numpy as np

from vla_kit.learn.evaluate import EvalReport, GroundingReport
from vla_kit.sim.dataset import ACTION_NAMES, Dataset
from vla_kit.sim.runner import EpisodeResult

__all__ = ["frame_grid", "stats_table", "learning_curves", "success_table", "grounding_heatmap", "filmstrip", "image_uri"]


def image_uri(image: np.ndarray) -> str:
    """A ``data:image/png`` URI of a uint8 image (compact and self-contained in the HTML report)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.asarray(image, dtype=np.uint8)).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _image_grid(images: Sequence[np.ndarray], titles: Sequence[str], cols: int, title: str, height_per_row: int = 190):
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    rows = max(1, int(np.ceil(len(images) / cols)))
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=list(titles), horizontal_spacing=0.01, vertical_spacing=0.08)
    for i, img in enumerate(images):
        fig.add_trace(go.Image(source=image_uri(img)), row=i // cols + 1, col=i % cols + 1)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    fig.update_annotations(font_size=10)
    fig.update_layout(title=title, height=60 + rows * height_per_row, margin=dict(l=10, r=10, t=70, b=10))
    return fig


def frame_grid(ds: Dataset, n: int = 8, cols: int = 4):
    """The first frame of ``n`` episodes spread over the dataset, titled with their instructions."""
    eps = ds.episodes
    pick = np.linspace(0, len(eps) - 1, num=min(n, len(eps))).round().astype(int)
    images, titles = [], []
    all_images = ds.images("front")
    for e in pick:
        row = eps.iloc[int(e)]
        images.append(all_images[int(row["dataset_from_index"])])
        titles.append(f"#{int(row['episode_index'])}: {row['tasks'][0]}")
    return _image_grid(images, titles, cols, "Camera frames with their instructions (first frame of each episode)")


def stats_table(ds: Dataset):
    """Action statistics (per dimension) the policy normalises with."""
    import pandas as pd

    s = ds.stats["action"]
    return pd.DataFrame({"action": ACTION_NAMES, "mean": s["mean"], "std": s["std"], "min": s["min"], "max": s["max"]})


def learning_curves(history: Sequence[dict]):
    """Training and validation L1 loss (normalised action units) against step, with throughput on hover."""
    import plotly.graph_objects as go

    steps = [h["step"] for h in history]
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=steps, y=[h["train_loss"] for h in history], mode="lines", name="train (mean over log window)",
                             customdata=[h["samples_per_s"] for h in history], hovertemplate="step %{x}<br>loss %{y:.4f}<br>%{customdata:.0f} samples/s<extra></extra>"))
    val = [(h["step"], h["val_loss"]) for h in history if "val_loss" in h]
    if val:
        fig.add_trace(go.Scatter(x=[v[0] for v in val], y=[v[1] for v in val], mode="lines+markers", name="validation (held-out episodes)"))
    fig.update_layout(title="Learning curves (masked L1 on normalised action chunks)", xaxis_title="optimiser step", yaxis_title="loss", yaxis_type="log", height=380)
    return fig


def success_table(report: EvalReport):
    """The success table with 95 % Wilson intervals."""
    return report.table()


def grounding_heatmap(report: GroundingReport):
    """Instructed colour (rows) x colour of the cube the arm reached (columns)."""
    import plotly.graph_objects as go

    m = report.matrix
    frac = m / np.maximum(m.sum(1, keepdims=True), 1)
    fig = go.Figure(go.Heatmap(z=frac, x=[f"reached {c}" for c in report.reached_colours], y=[f"told {c}" for c in report.colours],
                               text=m, texttemplate="%{text}", colorscale="Blues", zmin=0, zmax=1, colorbar=dict(title="fraction")))
    fig.update_layout(title=f"Language grounding: accuracy {report.accuracy:.0%} over {int(m.sum())} episodes (chance {report.chance:.0%})",
                      yaxis_autorange="reversed", height=360)
    return fig


def filmstrip(episode: EpisodeResult, frames: int = 8):
    """``frames`` evenly spaced camera frames of one rollout, with step and gripper command."""
    recs = [r for r in episode.records if r.observation is not None]
    if not recs:
        raise ValueError("the episode kept no observations (run it with record_observations=True)")
    pick = np.linspace(0, len(recs) - 1, num=min(frames, len(recs))).round().astype(int)
    images = [recs[i].observation.images["front"] for i in pick]
    titles = [f"step {recs[i].step} · grip {recs[i].action[-1]:.1f}" for i in pick]
    outcome = "success" if episode.success else "failure"
    return _image_grid(images, titles, min(len(images), 8), f"One rollout: “{episode.instruction}” ({outcome} in {episode.steps} steps, seed {episode.seed})", height_per_row=200)
