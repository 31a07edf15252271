"""Optimisation techniques, in one registry, and the chain that turns an artifact into a candidate.

A *technique* reads one verified policy artifact and writes another: ``onnx`` exports the graph,
``ort-int8-static`` quantises an ONNX artifact, ``prune-structured`` removes channels and
fine-tunes, ``distill`` trains a smaller student. A *candidate* is a named chain of steps::

    prune-structured -> onnx -> ort-int8-static

:func:`build_chain` applies the steps in order, each into its own folder, and every artifact it
writes records its :class:`~vla_kit.policy.spec.LineageStep` (technique, resolved options, the
parent's checksum hash), so a selected candidate can always be traced to the trained policy.

Writing a technique::

    @register_technique
    class OrtInt8Dynamic(Technique):
        name = "ort-int8-static"
        summary = "ONNX Runtime int8, static QDQ, calibrated on recorded observations"
        accepts = ("onnx",)                 # backends of the artifacts it can start from
        class Options(TechniqueOptions):    # validated; unknown keys are errors
            method: Literal["minmax", "entropy", "percentile"] = "minmax"

        def apply(self, source, spec, target, ctx, options):
            ...                              # write the new artifact with write_derived(...)

``unavailable()`` returns why the technique cannot run on this host (a missing optional package,
no GPU) or ``None``; the optimize stage marks such a candidate ``skipped: <reason>``.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar, Mapping, Sequence

from pydantic import BaseModel, ConfigDict, ValidationError

from vla_kit.errors import InputError
from vla_kit.policy.artifact import CHECKSUMS_FILE, resolve_artifact_dir, sha256_file, verify_artifact, write_artifact
from vla_kit.policy.spec import LineageStep, PolicySpec
from vla_kit.registry import Registry
from vla_kit.types import Observation

__all__ = [
    "TECHNIQUES",
    "Technique",
    "TechniqueOptions",
    "OptimizeContext",
    "Step",
    "register_technique",
    "get_technique",
    "parse_step",
    "write_derived",
    "build_chain",
    "chain_key",
]


class TechniqueOptions(BaseModel):
    """Base of every technique's options: frozen, unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass
class OptimizeContext:
    """What techniques may use besides the source artifact.

    Attributes:
        calibration: observations recorded from the training distribution (held out from the
            parity set), for static-quantisation calibration.
        dataset_root: the demonstration dataset the parent was trained on (fine-tuning after
            pruning, distillation inputs); ``None`` when the artifact came without one.
        seed: seeds every random choice a technique makes.
        threads: intra-op threads for any training or calibration a technique runs.
        finetune_steps: gradient steps for the short fine-tune after pruning / for distillation.
        log: one-line progress messages.
    """

    calibration: Sequence[Observation] = ()
    dataset_root: Path | None = None
    seed: int = 0
    threads: int = 1
    finetune_steps: int = 200
    log: Callable[[str], None] = field(default=lambda _msg: None)


class Technique(ABC):
    """One optimisation step. Subclasses set the class attributes and implement :meth:`apply`."""

    name: ClassVar[str]
    summary: ClassVar[str]  # one line for tables and `vla-kit optimize --list`
    accepts: ClassVar[tuple[str, ...]] = ("torch",)  # backends of source artifacts it can transform
    Options: ClassVar[type[TechniqueOptions]] = TechniqueOptions

    def unavailable(self) -> str | None:
        """Why this technique cannot run on this host (with what to install), or ``None``."""
        return None

    @abstractmethod
    def apply(self, source: Path, spec: PolicySpec, target: Path, ctx: OptimizeContext, options: TechniqueOptions) -> None:
        """Write the transformed artifact at ``target`` (use :func:`write_derived`).

        Args:
            source: the verified parent artifact folder.
            spec: its parsed ``policy.json``.
            target: the folder to create (does not exist yet).
            ctx: calibration data, dataset, seed, threads.
            options: this technique's validated :attr:`Options`.
        """


TECHNIQUES: Registry[Technique] = Registry("optimization technique")


def register_technique(cls: type[Technique]) -> type[Technique]:
    """Register one instance of ``cls`` under ``cls.name``; usable as a class decorator."""
    TECHNIQUES.register(cls.name, cls())
    return cls


def get_technique(name: str) -> Technique:
    """The technique registered as ``name``; RegistryError lists the available ones."""
    return TECHNIQUES.get(name)


@dataclass(frozen=True)
class Step:
    """A technique name with its validated options."""

    technique: str
    options: TechniqueOptions

    def describe(self) -> str:
        """``name`` or ``name(key=value, ...)`` for tables."""
        opts = self.options.model_dump(mode="json", exclude_defaults=True)
        return self.technique + (f"({', '.join(f'{k}={v}' for k, v in opts.items())})" if opts else "")


def parse_step(item: str | Mapping[str, Any], where: str) -> Step:
    """A step from params: ``"onnx"`` or ``{"ort-int8-static": {"method": "entropy"}}``.

    Raises:
        RegistryError: unknown technique (lists the available ones).
        InputError: malformed entry or bad options; names ``where`` and the option.
    """
    if isinstance(item, str):
        name, raw = item, {}
    elif isinstance(item, Mapping) and len(item) == 1:
        name, raw = next(iter(item.items()))
        raw = raw or {}
        if not isinstance(raw, Mapping):
            raise InputError(where, f"options of {name!r} must be a mapping, got {raw!r}")
    else:
        raise InputError(where, f"expected a technique name or {{name: {{options}}}}, got {item!r}")
    technique = get_technique(str(name))
    try:
        options = technique.Options(**dict(raw))
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise InputError(f"{where}.{name}", problems) from None
    return Step(str(name), options)


def write_derived(
    source: Path,
    spec: PolicySpec,
    target: Path,
    step: Step | tuple[str, TechniqueOptions | dict[str, Any]],
    write_files: Callable[[Path], None],
    *,
    overwrite: bool = False,
    **spec_updates: Any,
) -> Path:
    """Write ``target`` as a child of ``source``: ``spec`` updated, lineage appended, files written.

    Args:
        source: the parent artifact folder (its ``checksums.json`` hash goes into the lineage).
        spec: the parent's spec.
        target: the new artifact folder.
        step: the technique and options that made it (options as a model, or already a dict).
        write_files: writes the weights (and anything else) into the new folder.
        overwrite: replace an artifact already at ``target`` (atomically).
        **spec_updates: fields to replace, e.g. ``backend="onnxruntime"`` or ``model=...``.
    """
    technique, options = (step.technique, step.options) if isinstance(step, Step) else step
    entry = LineageStep(
        technique=technique,
        options=options if isinstance(options, dict) else options.model_dump(mode="json"),
        parent_sha256=sha256_file(Path(source) / CHECKSUMS_FILE),
    )
    data = spec.model_dump()
    data.update(spec_updates)
    data["lineage"] = [*spec.lineage, entry]
    new_spec = PolicySpec.model_validate(data)
    return write_artifact(target, new_spec, write_files, overwrite=overwrite)


def chain_key(steps: Sequence[Step]) -> tuple[str, ...]:
    """What identifies a chain (or a prefix of one): each step's technique and every option value."""
    return tuple(f"{s.technique}:{s.options.model_dump_json()}" for s in steps)


def build_chain(
    steps: Sequence[Step],
    base: str | Path,
    workdir: str | Path,
    ctx: OptimizeContext,
    built: dict[tuple[str, ...], tuple[Path, float]] | None = None,
) -> Path:
    """Apply ``steps`` in order starting from ``base``; the last artifact's folder.

    Each step writes ``workdir/<i>-<technique>``. A step whose source backend it does not accept
    fails before any work, naming the chain position.

    Args:
        built: shared between the chains of one run, keyed by :func:`chain_key` of a prefix: the
            folder that prefix built and the seconds the whole prefix took. A chain whose first
            steps another chain already built (``prune-structured → onnx`` and ``prune-structured →
            onnx → ort-int8-dynamic``) starts from that folder instead of fine-tuning again, and
            ``built[chain_key(steps)][1]`` is what the chain cost to build end to end.

    Raises:
        InputError: a step cannot start from the previous artifact's backend.
        MissingDependencyError / any exception a technique raises: the caller marks the candidate.
    """
    current = resolve_artifact_dir(base)
    spec = verify_artifact(current)
    workdir = Path(workdir)
    built = {} if built is None else built
    seconds = 0.0
    for i, step in enumerate(steps):
        key = chain_key(steps[: i + 1])
        if key in built:
            current, seconds = built[key]
            spec = verify_artifact(current)
            ctx.log(f"step {i + 1}/{len(steps)}: {step.describe()} (already built: {current})")
            continue
        technique = get_technique(step.technique)
        if spec.backend not in technique.accepts:
            raise InputError(
                f"step {i + 1} ({step.technique})",
                f"starts from a {spec.backend!r} artifact but accepts only {list(technique.accepts)}",
            )
        target = workdir / f"{i + 1}-{step.technique}"
        ctx.log(f"step {i + 1}/{len(steps)}: {step.describe()}")
        t0 = time.perf_counter()
        technique.apply(current, spec, target, ctx, step.options)
        current, spec = target, verify_artifact(target)
        seconds += time.perf_counter() - t0
        built[key] = (current, seconds)
    return current
