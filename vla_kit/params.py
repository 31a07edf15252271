"""Typed parameters: one YAML file per deployment, one section per stage.

A params file has common keys (``deployment``, ``seed``, ``target`` …), a ``runner`` section and
one section per registered stage::

    deployment: demo
    seed: 0
    target: x86-cpu
    pipeline: [survey]
    survey:
      gemm_sizes: [256, 512, 1024]

Everything is validated at load with pydantic (unknown keys are errors). Any error becomes a
:class:`~vla_kit.errors.ParamsError` naming the file and line, the key path, the value and what
was expected. ``--set stage.key=value`` overrides are parsed as YAML scalars and validated the
same way; their errors name the ``--set`` argument instead of the file.

Notebooks receive the common keys plus their stage's section as flat primitives
(:func:`notebook_parameters`) and map them back into the typed config in one call
(:func:`from_notebook`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Literal, Mapping

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from vla_kit.errors import ParamsError
from vla_kit.registry import Registry
from vla_kit.safety.envelope import Envelope

__all__ = [
    "StrictModel",
    "StageSpec",
    "STAGES",
    "SurveyParams",
    "TrainParams",
    "RunnerParams",
    "SafetyParams",
    "CommonParams",
    "Params",
    "StageConfig",
    "INPUT_REF",
    "load_params",
    "parse_overrides",
    "notebook_parameters",
    "from_notebook",
    "input_ref_fields",
    "COMMON_NOTEBOOK_KEYS",
]

# Marker put on stage fields that name an input artifact (a path or ``latest:<stage>[/sub/path]``):
# the runner resolves and hashes them. Use as ``policy: str = Field("latest:train", **INPUT_REF)``.
INPUT_REF: dict[str, Any] = {"json_schema_extra": {"vla_input": True}}

_SLUG = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")


def _only_known(values: list[str], known: list[str], what: str) -> list[str]:
    """Validator body: every value must be one of ``known``; the error lists them and the strays."""
    unknown = [v for v in values if v not in known]
    if unknown:
        raise ValueError(f"{what} from: {', '.join(known)} (unknown: {', '.join(unknown)})")
    return values


class StrictModel(BaseModel):
    """Base for every params section: unknown keys are errors, values are validated on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=True)


@dataclass(frozen=True)
class StageSpec:
    """A stage: its notebook (under ``notebooks/``), its params section model and one line on what it does."""

    name: str
    notebook: str
    params_model: type[StrictModel]
    summary: str
    uses_safety: bool = False  # the notebook also receives the ``safety`` envelope (as a ``safety`` dict)


# Stage name -> spec. Built-in stages register at the bottom of this module; tests register doubles.
STAGES: Registry[StageSpec] = Registry("stage")


class RunnerParams(StrictModel):
    """How papermill executes a stage notebook."""

    cell_timeout_s: int = Field(1800, gt=0)  # s; a single cell running longer fails the run
    start_timeout_s: int = Field(120, gt=0)  # s; kernel start-up budget
    progress: bool = True  # show papermill's per-cell progress bar on stderr
    html: bool = True  # export report.html (turn off only to save seconds in tests)


class SafetyParams(Envelope, StrictModel):
    """``safety``: the safety envelope — every limit the safety layer enforces.

    The fields, their units and their checks are those of
    :class:`vla_kit.safety.envelope.Envelope` (this *is* one: pass it straight to
    ``SafetyLayer``): robot, enabled, dt, on_violation (clamp | reject), joints (margins,
    per-joint overrides), cartesian (boxes, planes, TCP speed normal/reduced, tool cone, link
    radius), obstacles, separation (ISO/TS 15066 terms), gripper, watchdog. Used by
    ``vla-kit safety`` and the safety_validate stage. Problems are reported with the key path
    (``safety.joints.v_max[3]``) and the file line.
    """


class CommonParams(StrictModel):
    """Keys every params file has and every notebook receives."""

    deployment: str  # archive folder name: outputs/<deployment>/ (lowercase slug)
    seed: int = Field(0, ge=0)  # master seed; stages derive their own from it
    target: str = "x86-cpu"  # platform catalogue key of the hardware this deployment aims at
    description: str = ""  # free text shown in reports
    pipeline: list[str] = Field(default_factory=list)  # stages `vla-kit pipeline` runs, in order
    runner: RunnerParams = Field(default_factory=RunnerParams)
    safety: SafetyParams = Field(default_factory=SafetyParams)  # the safety envelope (see SafetyParams)

    @field_validator("deployment")
    @classmethod
    def _deployment_is_slug(cls, v: str) -> str:
        if not _SLUG.match(v):
            raise ValueError("a lowercase slug: letters, digits, '-', '_' or '.', at most 64 characters")
        return v

    @field_validator("pipeline")
    @classmethod
    def _pipeline_stages_exist(cls, v: list[str]) -> list[str]:
        return _only_known(v, STAGES.names(), "stage names")

    @field_validator("target")
    @classmethod
    def _target_in_catalogue(cls, v: str) -> str:
        from vla_kit.profile.platforms import load_catalogue

        keys = [p.key for p in load_catalogue()]
        if v not in keys:
            raise ValueError(f"a platform key from: {', '.join(keys)}")
        return v


COMMON_NOTEBOOK_KEYS = ("deployment", "seed", "target")


@dataclass(frozen=True)
class Params:
    """A validated params file: common keys plus one typed section per stage.

    Attributes:
        source: where it was loaded from (file path, or ``<notebook>``).
        common: the common keys.
        stages: stage name -> validated section (every registered stage, defaults filled in).
        raw: the merged mapping after ``--set`` overrides, before defaults.
    """

    source: str
    common: CommonParams
    stages: Mapping[str, StrictModel]
    raw: Mapping[str, Any]

    @property
    def safety(self) -> SafetyParams:
        """The ``safety`` section: the validated safety envelope."""
        return self.common.safety

    def section(self, stage: str) -> StrictModel:
        """The typed section of ``stage`` (defaults if the file has none)."""
        return self.stages[stage]

    def resolved(self) -> dict[str, Any]:
        """Everything, defaults included, as plain YAML-able data (what ``params.yaml`` records)."""
        out = self.common.model_dump(mode="json")
        for name, section in self.stages.items():
            out[name] = section.model_dump(mode="json")
        return out

    def with_section(self, stage: str, section: StrictModel) -> "Params":
        """A copy with one stage section replaced (used after resolving ``latest:`` inputs)."""
        stages = dict(self.stages)
        stages[stage] = section
        return Params(self.source, self.common, stages, self.raw)


@dataclass(frozen=True)
class StageConfig:
    """What a stage notebook works with: the common keys and its own section."""

    stage: str
    common: CommonParams
    section: StrictModel

    def __getattr__(self, name: str) -> Any:
        # Convenience for notebooks: cfg.gemm_sizes reads the section, cfg.seed the common keys.
        for obj in (self.__dict__.get("section"), self.__dict__.get("common")):
            if obj is not None and name in type(obj).model_fields:
                return getattr(obj, name)
        raise AttributeError(name)


# --------------------------------------------------------------------------------------------
# YAML with line numbers


def _key_lines(text: str) -> dict[tuple[Any, ...], int]:
    """Map each key path in a YAML document to its 1-based line, for error messages."""
    lines: dict[tuple[Any, ...], int] = {}

    def walk(node: yaml.Node, path: tuple[Any, ...]) -> None:
        lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                key = k.value
                lines[path + (key,)] = k.start_mark.line + 1
                walk(v, path + (key,))
        elif isinstance(node, yaml.SequenceNode):
            for i, v in enumerate(node.value):
                walk(v, path + (i,))

    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return lines
    if root is not None:
        walk(root, ())
    return lines


def _format_path(loc: Iterable[Any]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _expected_from_pydantic(err: Mapping[str, Any], model: type[BaseModel] | None) -> str:
    kind = err.get("type", "")
    if kind == "extra_forbidden":
        known = ", ".join(model.model_fields) if model is not None else ""
        return f"no such key (known keys here: {known})" if known else "no such key"
    if kind == "missing":
        return "a value (this key is required)"
    msg = str(err.get("msg", "a valid value"))
    # pydantic phrases these as "Value error, <ours>"; keep only ours.
    msg = re.sub(r"^Value error, ", "", msg)
    return re.sub(r"^Input should be ", "", msg)


# pydantic names the failed branch of a union in the error location ("float", "list[float]"): not a key.
_UNION_TAG = re.compile(r"^(float|int|str|bool|list\[.*\]|dict\[.*\])$")


def _problem(err: Mapping[str, Any]) -> tuple[Any, ...]:
    """The key path of an error, cut at the first union branch tag (branches of one union are one problem)."""
    loc = tuple(err.get("loc", ()))
    cut = next((i for i, p in enumerate(loc) if isinstance(p, str) and _UNION_TAG.match(p)), len(loc))
    return loc[:cut]


def _pick_error(errors: list[Any]) -> tuple[Mapping[str, Any], tuple[Any, ...], Any, str | None]:
    """The error to report — the first problem, and of a union's failed branches the deepest
    (``v_max[3]`` says more than ``v_max``) — as ``(error, key path, value, expected or None)``.

    A model validator that knows which key is wrong (the safety envelope) raises an error with
    ``loc``, ``value`` and ``expected``: its key path is appended and its words are used.
    """
    key = _problem(errors[0])
    err = max((e for e in errors if _problem(e) == key), key=lambda e: len(e.get("loc", ())))
    loc = tuple(p for p in err.get("loc", ()) if not (isinstance(p, str) and _UNION_TAG.match(p)))
    value = None if err.get("type") == "missing" else err.get("input")
    issue = (err.get("ctx") or {}).get("error")
    if isinstance(getattr(issue, "loc", None), tuple) and hasattr(issue, "expected"):
        return err, loc + issue.loc, getattr(issue, "value", value), str(issue.expected)
    return err, loc, value, None


def _model_at(root: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The pydantic model class that owns the last key of ``loc`` (for listing known keys)."""
    model: type[BaseModel] | None = root
    for part in loc[:-1]:
        if model is None or isinstance(part, int):
            continue
        field = model.model_fields.get(str(part))
        ann = getattr(field, "annotation", None) if field else None
        model = ann if isinstance(ann, type) and issubclass(ann, BaseModel) else None
    return model


def _raise_validation(
    exc: ValidationError,
    model: type[BaseModel],
    *,
    prefix: tuple[Any, ...],
    source: str,
    lines: Mapping[tuple[Any, ...], int],
    overrides: Mapping[tuple[str, ...], str],
) -> None:
    errors = exc.errors()
    err, loc, value, expected = _pick_error(errors)
    full = prefix + loc
    key_path = _format_path(full)
    if expected is None:
        expected = _expected_from_pydantic(err, _model_at(model, loc))
    more = len({_problem(e) for e in errors}) - 1
    if more > 0:
        expected += f" (and {more} more problem{'s' if more > 1 else ''} in this file)"
    # An overridden key is blamed on its --set argument, not on the file.
    for opath, arg in overrides.items():
        n = min(len(opath), len(full))
        if tuple(full[:n]) == opath[:n]:
            raise ParamsError(f"--set {arg}", key_path, value, expected) from None
    line = None
    for n in range(len(full), 0, -1):
        if full[:n] in lines:
            line = lines[full[:n]]
            break
    raise ParamsError(source, key_path, value, expected, line=line) from None


# --------------------------------------------------------------------------------------------
# Loading


def parse_overrides(items: Iterable[str]) -> dict[tuple[str, ...], tuple[Any, str]]:
    """Parse ``--set key.path=value`` arguments.

    Args:
        items: strings like ``survey.gemm_repeats=3`` or ``survey.gemm_sizes=[128, 256]``.

    Returns:
        key path tuple -> (value parsed as a YAML scalar/flow value, the original argument).

    Raises:
        ParamsError: an item without ``=``, with an empty key, or with an unparsable value.
    """
    out: dict[tuple[str, ...], tuple[Any, str]] = {}
    for item in items:
        if "=" not in item:
            raise ParamsError(f"--set {item}", "", item, "KEY.PATH=VALUE, e.g. survey.gemm_repeats=3")
        key, _, text = item.partition("=")
        path = tuple(p.strip() for p in key.strip().split("."))
        if not all(path):
            raise ParamsError(f"--set {item}", key, item, "a dotted key path such as survey.gemm_repeats")
        try:
            value = yaml.safe_load(text) if text.strip() else ""
        except yaml.YAMLError as e:
            raise ParamsError(f"--set {item}", key, text, f"a YAML value ({str(e).splitlines()[0]})") from None
        out[path] = (value, item)
    return out


def _apply_overrides(data: dict[str, Any], overrides: Mapping[tuple[str, ...], tuple[Any, str]]) -> None:
    for path, (value, arg) in overrides.items():
        node = data
        for part in path[:-1]:
            nxt = node.get(part)
            if nxt is None:
                nxt = node[part] = {}
            if not isinstance(nxt, dict):
                raise ParamsError(f"--set {arg}", ".".join(path), value, f"'{part}' to be a section, but it is a value")
            node = nxt
        node[path[-1]] = value


def load_params(
    path: str | Path,
    overrides: Iterable[str] = (),
) -> Params:
    """Load and validate a params file, applying ``--set`` overrides.

    Args:
        path: the YAML file.
        overrides: ``key.path=value`` strings, applied in order.

    Returns:
        The validated :class:`Params`, with every registered stage's section (defaults filled in).

    Raises:
        ParamsError: missing/unreadable file, YAML syntax error, unknown key, wrong type or value.
    """
    source = str(path)
    p = Path(path)
    if not p.is_file():
        raise ParamsError(source, "", None, "an existing params file (YAML); no such file")
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ParamsError(source, "", None, f"a readable UTF-8 YAML file ({e})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ParamsError(source, "", None, f"valid YAML ({problem})", line=line) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ParamsError(source, "", data, "a mapping of keys at the top level (deployment: ..., seed: ...)")
    parsed = parse_overrides(overrides)
    _apply_overrides(data, parsed)
    return _validate(data, source=source, lines=_key_lines(text), overrides={k: a for k, (_, a) in parsed.items()})


def _validate(
    data: Mapping[str, Any],
    *,
    source: str,
    lines: Mapping[tuple[Any, ...], int] = {},
    overrides: Mapping[tuple[str, ...], str] = {},
) -> Params:
    common_keys = set(CommonParams.model_fields)
    stage_names = set(STAGES.names())
    for key in data:
        if key not in common_keys and key not in stage_names:
            known = ", ".join(sorted(common_keys | stage_names))
            exc_source = next((a for p, a in overrides.items() if p[0] == key), None)
            raise ParamsError(
                f"--set {exc_source}" if exc_source else source,
                str(key),
                data[key],
                f"no such key (known top-level keys: {known})",
                line=None if exc_source else lines.get((key,)),
            )
    common_data = {k: v for k, v in data.items() if k in common_keys}
    try:
        common = CommonParams.model_validate(common_data)
    except ValidationError as e:
        _raise_validation(e, CommonParams, prefix=(), source=source, lines=lines, overrides=overrides)
    stages: dict[str, StrictModel] = {}
    for name in STAGES.names():
        section_data = data.get(name, {})
        if section_data is None:
            section_data = {}
        if not isinstance(section_data, dict):
            raise ParamsError(source, name, section_data, "a mapping of this stage's keys", line=lines.get((name,)))
        model = STAGES.get(name).params_model
        try:
            stages[name] = model.model_validate(section_data)
        except ValidationError as e:
            _raise_validation(e, model, prefix=(name,), source=source, lines=lines, overrides=overrides)
    return Params(source=source, common=common, stages=stages, raw=dict(data))


# --------------------------------------------------------------------------------------------
# Notebook side


def input_ref_fields(model: type[BaseModel]) -> list[str]:
    """Names of the fields of ``model`` marked with :data:`INPUT_REF`."""
    out = []
    for name, field in model.model_fields.items():
        extra = field.json_schema_extra
        if isinstance(extra, dict) and extra.get("vla_input"):
            out.append(name)
    return out


def notebook_parameters(params: Params, stage: str | None) -> dict[str, Any]:
    """The flat primitives papermill injects: common keys plus the stage section's fields.

    Args:
        params: validated params.
        stage: a registered stage, or ``None`` for a user notebook (common keys only).
    """
    out: dict[str, Any] = {k: getattr(params.common, k) for k in COMMON_NOTEBOOK_KEYS}
    if stage is not None:
        section = params.section(stage).model_dump(mode="json")
        clash = set(section) & set(out)
        if clash:  # a stage model bug, caught in tests
            raise ParamsError(stage, ",".join(sorted(clash)), None, "stage keys distinct from the common keys")
        out.update(section)
        if STAGES.get(stage).uses_safety:
            out["safety"] = params.common.safety.model_dump(mode="json", exclude_none=True)
    return out


def from_notebook(stage: str, namespace: Mapping[str, Any]) -> StageConfig:
    """Build the typed config of ``stage`` from a notebook's parameter variables.

    Reads exactly the common keys and the stage's fields from ``namespace`` (a notebook passes
    ``globals()``), so a hand-edited parameters cell is validated like a params file.

    Args:
        stage: registered stage name.
        namespace: where the parameter variables live.

    Returns:
        The stage's :class:`StageConfig`.

    Raises:
        ParamsError: a parameter is missing or invalid; the source is ``notebook parameter``.
    """
    spec = STAGES.get(stage)
    model = spec.params_model
    wanted = list(COMMON_NOTEBOOK_KEYS) + list(model.model_fields) + (["safety"] if spec.uses_safety else [])
    missing = [k for k in wanted if k not in namespace]
    if missing:
        raise ParamsError(f"notebooks/{stage}.ipynb", missing[0], None, "a variable in the parameters cell")
    data: dict[str, Any] = {k: namespace[k] for k in COMMON_NOTEBOOK_KEYS}
    data[stage] = {k: namespace[k] for k in model.model_fields}
    if spec.uses_safety:
        data["safety"] = namespace["safety"]
    params = _validate(data, source=f"notebook parameters of {stage}")
    return StageConfig(stage=stage, common=params.common, section=params.section(stage))


# --------------------------------------------------------------------------------------------
# Stage sections


class SurveyParams(StrictModel):
    """``survey``: what this host can do (backends that work, measured compute and memory peaks)."""

    gemm_sizes: list[int] = Field(default_factory=lambda: [256, 512, 1024], min_length=1)  # square GEMM n
    gemm_repeats: int = Field(5, ge=1, le=1000)  # timed samples per size; the best one is the peak
    min_sample_ms: float = Field(20.0, gt=0, le=10_000)  # ms; each timed sample loops until this long
    bandwidth_mib: int = Field(256, ge=1, le=65_536)  # MiB per array in the memory bandwidth test
    bandwidth_repeats: int = Field(5, ge=1, le=1000)  # timed samples for bandwidth; best is reported
    threads: int = Field(0, ge=0)  # intra-op threads for torch / ONNX Runtime; 0 = all cores
    probe_torch_compile: bool = True  # prove torch.compile works (compiles a tiny model: ~10-60 s)
    platforms: list[str] = Field(default_factory=list)  # catalogue keys to compare against; [] = all

    @field_validator("gemm_sizes")
    @classmethod
    def _sizes_sane(cls, v: list[int]) -> list[int]:
        bad = [n for n in v if not 16 <= n <= 16384]
        if bad:
            raise ValueError(f"sizes between 16 and 16384 (got {bad})")
        return v

    @field_validator("platforms")
    @classmethod
    def _platforms_known(cls, v: list[str]) -> list[str]:
        from vla_kit.profile.platforms import load_catalogue

        return _only_known(v, [p.key for p in load_catalogue()], "platform keys")


class TrainParams(StrictModel):
    """``train``: record demonstrations in simulation, train the reference VLA, evaluate it closed loop."""

    tasks: list[str] = Field(default_factory=lambda: ["reach"], min_length=1)  # task families to learn
    colours: list[str] = Field(default_factory=lambda: ["red", "green", "blue", "yellow"], min_length=1)  # target colours
    episodes: int = Field(160, ge=1, le=100_000)  # expert demonstrations to record
    image_size: int = Field(96, ge=32, le=512)  # camera side, px
    start_jitter: float = Field(0.1, ge=0, le=0.15)  # m; random start box around home (recording and evaluation)
    action_noise: float = Field(0.01, ge=0, le=0.05)  # m; DART noise on executed translations while recording
    dataset: str = Field("", **INPUT_REF)  # reuse a recorded dataset folder ("" = record, cached per deployment)
    preset: str = "tiny"  # model size: tiny (<=2 M params), small, base
    chunk_length: int = Field(8, ge=1, le=64)  # actions per predicted chunk
    steps: int = Field(1500, ge=1)  # optimiser steps
    batch_size: int = Field(64, ge=1, le=4096)  # samples per step
    lr: float = Field(1e-3, gt=0, le=1.0)  # peak learning rate (AdamW, warm-up then cosine)
    weight_decay: float = Field(1e-4, ge=0)  # AdamW weight decay
    warmup_steps: int = Field(100, ge=0)  # linear warm-up steps
    augment: bool = True  # random shift and brightness/contrast jitter
    val_fraction: float = Field(0.1, ge=0, lt=1)  # held-out episodes for validation loss
    eval_every: int = Field(250, ge=1)  # steps between validation loss + checkpoint
    goal_weight: float = Field(1.0, ge=0, le=100)  # auxiliary "where is the named cube" loss (0 = off)
    threads: int = Field(0, ge=0)  # torch threads for training (0 = all cores)
    eval_episodes: int = Field(60, ge=1)  # closed-loop evaluation episodes (round-robin over tasks x colours)
    eval_seed: int = Field(12345, ge=0, lt=900_000)  # first evaluation seed (recording seeds start at 1e6)
    execute_steps: int = Field(4, ge=1)  # chunk steps executed before re-planning
    grounding_scenes: int = Field(10, ge=1)  # scenes in the language-grounding test (x each colour)

    @field_validator("tasks")
    @classmethod
    def _tasks_known(cls, v: list[str]) -> list[str]:
        from vla_kit.sim.tasks import task_names

        return _only_known(v, list(task_names()), "task families")

    @field_validator("colours")
    @classmethod
    def _colours_known(cls, v: list[str]) -> list[str]:
        from vla_kit.sim.layout import COLOURS

        return _only_known(v, list(COLOURS), "colours")

    @field_validator("preset")
    @classmethod
    def _preset_known(cls, v: str) -> str:
        from vla_kit.policy.config import preset_names

        if v not in preset_names():
            raise ValueError(f"a model preset from: {', '.join(preset_names())}")
        return v


class OptimizeParams(StrictModel):
    """``optimize``: build candidates (precision, backends, pruning, distillation), judge each the
    same way, select one under the budgets. See :mod:`vla_kit.optimize`."""

    policy: str = Field("latest:train", **INPUT_REF)  # the artifact to optimise (a run, artifact folder or latest:train)
    dataset: str = Field("", **INPUT_REF)  # its training dataset ("" = the one its provenance names, from the cache)
    # Each: {name, steps: [technique | {technique: {option: value}}], backend: "" = the artifact's}.
    candidates: list[dict[str, Any]] = Field(default_factory=lambda: [
        {"name": "ort-fp32", "steps": [{"onnx": {"optimize": True}}]},
        {"name": "ort-int8-dynamic", "steps": ["onnx", "ort-int8-dynamic"]},
        {"name": "ort-int8-static", "steps": ["onnx", {"ort-int8-static": {"method": "percentile"}}]},
        {"name": "bf16", "steps": ["bf16"]},
        {"name": "pruned-ort", "steps": ["prune-structured", "onnx"]},
        {"name": "distilled-ort", "steps": ["distill", "onnx"]},
        {"name": "tensorrt-fp16", "steps": ["onnx", "tensorrt-fp16"]},
    ])
    threads: int = Field(1, ge=1, le=256)  # intra-op threads, the same for every candidate
    warmup: int = Field(10, ge=0)  # predict calls before timing
    latency_iters: int = Field(100, ge=5)  # timed batch-1 calls per candidate
    throughput_batch: int = Field(16, ge=1, le=1024)  # batch of the throughput measurement
    throughput_iters: int = Field(5, ge=1)
    parity_frames: int = Field(64, ge=1)  # held-out observations for the action-error check
    calibration_frames: int = Field(64, ge=1)  # training observations for static int8 calibration
    finetune_steps: int = Field(200, ge=0)  # fine-tune after pruning / distillation steps
    eval_episodes: int = Field(20, ge=1)  # closed-loop episodes per candidate (same seeds for all)
    eval_seed: int = Field(12345, ge=0, lt=900_000)
    execute_steps: int = Field(4, ge=1)
    max_latency_ms: float | None = Field(None, gt=0)  # budget on batch-1 p50 (null = none)
    max_success_drop_pp: float = Field(5.0, ge=0, le=100)  # budget: baseline success minus candidate's, pp
    max_action_error: float = Field(0.5, gt=0)  # budget: mean |candidate - baseline| chunk, in action std units
    objective: Literal["latency", "size"] = "latency"  # what the selection minimises among eligible candidates
    worker_timeout_s: int = Field(1800, ge=10)  # per-candidate measurement budget

    @field_validator("candidates")
    @classmethod
    def _candidates_parse(cls, v: list[dict[str, Any]]) -> list[dict[str, Any]]:
        from vla_kit.errors import VlaKitError
        from vla_kit.optimize.stage import parse_candidates

        for i, item in enumerate(v):
            unknown = set(item) - {"name", "steps", "backend"}
            if unknown:
                raise ValueError(f"candidates[{i}] has unknown keys {sorted(unknown)}; expected name, steps, backend")
        try:
            parse_candidates(v, "candidates")
        except VlaKitError as exc:
            raise ValueError(str(exc)) from None
        return v


class GateParams(StrictModel):
    """``safety_validate.gate``: what the battery must show for the run to pass. ``null`` switches a check off."""

    max_violations: int = Field(0, ge=0)  # hard-limit violations at the robot, per scenario (ISO: 0)
    min_detection_rate: float = Field(1.0, ge=0, le=1)  # share of injected non-finite / stale / late / lost-state faults detected
    max_estop_latency_cycles: int = Field(1, ge=0)  # cycles from a non-finite command to the latched e-stop
    max_detection_latency_cycles: int | None = Field(1, ge=0)  # cycles from any injected fault to its detection
    max_separation_breaches: int = Field(0, ge=0)  # cycles a person was inside S_p while the arm was driven
    min_nominal_success: float | None = Field(0.6, ge=0, le=1)  # task success of the nominal scenario
    max_nominal_intervention_rate: float | None = Field(None, ge=0, le=1)  # share of nominal cycles the layer changed


class SafetyValidateParams(StrictModel):
    """``safety_validate``: run a policy through the safety layer on the simulated arm over the
    scenario battery; the gate fails the run on any violation at the robot or missed fault.
    The envelope is the params file's ``safety`` section. See :mod:`vla_kit.validate`."""

    # the artifact to validate: by default what optimize selected (a run, artifact folder or latest:<stage>/...)
    policy: str = Field("latest:optimize/artifacts/selected", **INPUT_REF)
    scenarios: list[str] = Field(default_factory=list)  # battery scenarios to run ([] = all of them)
    episodes: int = Field(5, ge=1, le=1000)  # episodes per scenario (the same seeds for every scenario)
    eval_seed: int = Field(777000, ge=0, lt=900_000)  # first episode seed
    execute_steps: int = Field(4, ge=1)  # chunk rows executed before querying the policy again
    max_frame_age: float = Field(0.15, gt=0, le=10)  # s; the loop never queries the policy on an older frame
    smoothing: float = Field(15.0, gt=0, le=1000)  # rad/s, natural frequency of the loop's command smoother
    policy_fault: str = ""  # inject this action fault into every scenario ("" = none): nan-burst, spike, frozen, drift, sign-flip
    threads: int = Field(1, ge=1, le=256)  # torch threads for the policy
    save_traces: bool = True  # write every episode to artifacts/traces/ (vla-kit safety audit reads them)
    gate: GateParams = Field(default_factory=GateParams)

    @field_validator("scenarios")
    @classmethod
    def _known_scenarios(cls, v: list[str]) -> list[str]:
        from vla_kit.safety.scenarios import scenario_names

        if len(set(v)) != len(v):
            raise ValueError("each scenario at most once")
        return _only_known(v, scenario_names(), "scenario names")

    @field_validator("policy_fault")
    @classmethod
    def _known_fault(cls, v: str) -> str:
        from vla_kit.safety.perturb import ACTION_FAULTS

        if v and v not in ACTION_FAULTS:
            raise ValueError(f"an action fault from: {', '.join(ACTION_FAULTS)} (or empty for none)")
        return v


STAGES.register(
    "survey",
    StageSpec("survey", "survey.ipynb", SurveyParams, "what this host can do: backends, GEMM and memory peaks"),
)
STAGES.register(
    "train",
    StageSpec("train", "train.ipynb", TrainParams, "a reference VLA trained in simulation, with closed-loop success and grounding"),
)
STAGES.register(
    "optimize",
    StageSpec("optimize", "optimize.ipynb", OptimizeParams, "candidates (int8, bf16, ONNX Runtime, pruning, distillation) judged by success and latency; one selected"),
)
STAGES.register(
    "safety_validate",
    StageSpec("safety_validate", "safety_validate.ipynb", SafetyValidateParams,
              "the policy through the safety layer over a fault battery; the gate fails an unsafe deployment", uses_safety=True),
)
