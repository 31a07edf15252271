"""A briefly trained ``tiny`` policy, shared by the backend and the precision-technique tests.

Parity of an int8 model against float means little on a randomly initialised network: its outputs
barely depend on the input (a near-constant chunk), so a quantisation error that swamps what
little signal there is still shows a cosine of 0.9997. Thirty AdamW steps on a synthetic task
whose targets depend on proprio, the instruction and where a coloured square sits in the image
give outputs that vary with the input like a trained policy's; int8 errors are then measured
against that variation (:func:`relative_error`).

Built once per test process (``functools.cache``), in a temporary folder removed at exit, so the
``tests/policy/backends`` and ``tests/optimize`` modules share one training run.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from functools import cache
from pathlib import Path

import numpy as np
import torch

from tests.policy.conftest import INSTRUCTIONS, fake_stats
from vla_kit.optimize import OptimizeContext, build_chain, parse_step
from vla_kit.policy import PolicySpec, Tokenizer, build_model, make_spec, model_config, save_artifact
from vla_kit.policy.processing import ModelInputs, Processor
from vla_kit.types import Observation

_COLOURS = np.array([[220, 40, 40], [40, 60, 220], [40, 200, 60]], dtype=np.uint8)
TRAIN_STEPS = 30


def observations(n: int, seed: int) -> list[Observation]:
    """Grey noise with one coloured 16 px square, a known instruction, normal proprio."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        image = rng.integers(60, 120, size=(96, 96, 3), dtype=np.uint8)
        y, x = rng.integers(0, 80, size=2)
        image[y : y + 16, x : x + 16] = _COLOURS[rng.integers(3)]
        instruction = INSTRUCTIONS[rng.integers(len(INSTRUCTIONS))]
        out.append(Observation(images={"front": image}, instruction=instruction, proprio=rng.normal(size=14).astype(np.float32)))
    return out


def _targets(batch: list[Observation], inputs: ModelInputs) -> np.ndarray:
    w = np.random.default_rng(123).normal(size=(14, 8 * 7)) / 4
    task = np.array([INSTRUCTIONS.index(o.instruction) for o in batch])[:, None, None] - 1.0
    brightest = inputs.images[:, 0].max(-1).reshape(len(batch), -1).argmax(1)
    row = (brightest // 96) / 48.0 - 1.0
    chunk = np.tanh(inputs.proprio @ w).reshape(-1, 8, 7) + 0.5 * task + row[:, None, None] * np.linspace(-1, 1, 7)
    return chunk.astype(np.float32)


def trained_spec() -> PolicySpec:
    tok = Tokenizer.build(INSTRUCTIONS)
    cfg = model_config("tiny", vocab_size=tok.vocab_size)
    return make_spec(
        cfg,
        tok,
        proprio_stats=fake_stats(cfg.proprio_dim, seed=1, scale=0.1),
        action_stats=fake_stats(cfg.action_dim, seed=2, scale=0.01),
        preset="tiny",
        provenance={"train": {"steps": TRAIN_STEPS, "task": "synthetic"}},
    )


@cache
def trained_artifact() -> Path:
    """The artifact folder of the trained policy (read-only for tests: copy before altering it)."""
    spec = trained_spec()
    data = observations(128, seed=0)
    inputs, _ = Processor(spec).preprocess(data)
    x = [torch.from_numpy(a) for a in inputs.as_dict().values()]
    y = torch.from_numpy(_targets(data, inputs))
    model = build_model(spec.model, seed=0).train()
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3)
    gen = torch.Generator().manual_seed(0)
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for _ in range(TRAIN_STEPS):
            idx = torch.randint(0, len(data), (8,), generator=gen)
            loss = torch.nn.functional.mse_loss(model(*(t[idx] for t in x)), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    finally:
        torch.set_num_threads(before)
    folder = Path(tempfile.mkdtemp(prefix="vla_kit-trained-"))
    atexit.register(shutil.rmtree, folder, True)
    return save_artifact(folder / "policy", model.eval(), spec)


def relative_error(output: np.ndarray, reference: np.ndarray) -> float:
    """``|output - reference| / |reference - its batch mean|``: error against the signal's spread."""
    spread = reference - reference.mean(axis=0, keepdims=True)
    return float(np.linalg.norm(output - reference) / np.linalg.norm(spread))


def centred_cosine(output: np.ndarray, reference: np.ndarray) -> float:
    """Cosine between the two outputs after removing the reference's batch mean from both."""
    mean = reference.mean(axis=0, keepdims=True)
    a, b = (output - mean).ravel(), (reference - mean).ravel()
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


@cache
def exported_artifact() -> Path:
    """The trained policy through the ``onnx`` technique (read-only for tests)."""
    folder = Path(tempfile.mkdtemp(prefix="vla_kit-exported-"))
    atexit.register(shutil.rmtree, folder, True)
    return build_chain([parse_step("onnx", "test")], trained_artifact(), folder, OptimizeContext(calibration=calibration_set()))


def calibration_set() -> list[Observation]:
    """64 observations for static-quantisation calibration (disjoint seeds from the parity set)."""
    return observations(64, seed=5)


def parity_set() -> list[Observation]:
    """32 held-out observations every parity test compares backends on."""
    return observations(32, seed=99)
