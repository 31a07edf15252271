"""``load_policy``: the one way from an artifact on disk to a policy that predicts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vla_kit.policy.artifact import resolve_artifact_dir, verify_artifact
from vla_kit.policy.backends import PolicyBackend, get_backend

__all__ = ["load_policy", "thread_options"]

THREADED_BACKENDS = ("onnxruntime", "openvino")  # backends that take a `threads` load option


def load_policy(path: str | Path, backend: str | None = None, **options: Any) -> PolicyBackend:
    """Verify an artifact and load it with one backend.

    Args:
        path: an artifact folder, or a run folder holding one at ``artifacts/policy``.
        backend: a registered backend name (see :data:`vla_kit.policy.backends.BACKENDS`);
            ``None`` uses the one the artifact records (``policy.json`` ``backend``).
        **options: passed to the backend, e.g. ``device="cuda"`` for ``torch``.

    Returns:
        The policy: ``predict(obs) -> ActionChunk``, ``predict_batch``, ``.spec``,
        ``.num_parameters``; also callable as ``policy(obs)``.

    Raises:
        RegistryError: unknown backend; lists the registered ones.
        ArtifactError: the artifact is missing, malformed, or lacks the backend's weights file.
        ChecksumMismatchError: a file differs from its recorded sha256.
    """
    if backend is not None:
        get_backend(backend)  # before any disk work: a typo should fail fast
    folder = resolve_artifact_dir(path)
    spec = verify_artifact(folder)
    return get_backend(backend or spec.backend).load(folder, spec, **options)


def thread_options(backend: str, threads: int) -> dict[str, Any]:
    """The load options that give ``backend`` ``threads`` intra-op threads (torch sets its own globally)."""
    return {"threads": threads} if backend in THREADED_BACKENDS else {}
