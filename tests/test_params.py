"""Params files: typed, strict, and every error names file, key path, value and expectation."""

from __future__ import annotations

import pytest

from tests.conftest import ROOT
from vla_kit.errors import ParamsError
from vla_kit.params import (
    COMMON_NOTEBOOK_KEYS,
    STAGES,
    SurveyParams,
    from_notebook,
    load_params,
    notebook_parameters,
    parse_overrides,
)


@pytest.mark.parametrize("name", ["demo.yaml", "ci.yaml"])
def test_shipped_params_files_load(name):
    p = load_params(ROOT / "params" / name)
    assert p.common.pipeline and set(p.common.pipeline) <= set(STAGES.names())
    assert isinstance(p.section("survey"), SurveyParams)


def test_defaults_fill_missing_sections(write_params):
    p = load_params(write_params({"deployment": "d"}))
    assert p.section("survey") == SurveyParams()
    assert p.resolved()["survey"]["gemm_repeats"] == SurveyParams().gemm_repeats


def test_missing_file_is_named(tmp_path):
    with pytest.raises(ParamsError, match="no such file") as info:
        load_params(tmp_path / "nope.yaml")
    assert info.value.exit_code == 2


def test_yaml_syntax_error_names_the_line(write_params):
    path = write_params("deployment: d\nsurvey:\n  gemm_sizes: [1, 2\n")
    with pytest.raises(ParamsError) as info:
        load_params(path)
    assert info.value.line is not None and "valid YAML" in str(info.value)


def test_top_level_must_be_a_mapping(write_params):
    with pytest.raises(ParamsError, match="mapping"):
        load_params(write_params("- a\n- b\n"))


def test_unknown_top_level_key_lists_known_keys(write_params):
    with pytest.raises(ParamsError) as info:
        load_params(write_params("deployment: d\nsurvy: {}\n"))
    e = info.value
    assert e.key_path == "survy" and e.line == 2 and "survey" in e.expected


def test_unknown_stage_key_is_an_error_not_a_warning(write_params):
    with pytest.raises(ParamsError) as info:
        load_params(write_params("deployment: d\nsurvey:\n  repeats: 3\n"))
    e = info.value
    assert (e.key_path, e.value, e.line) == ("survey.repeats", 3, 3)
    assert "gemm_repeats" in e.expected


def test_wrong_type_names_key_value_and_expectation(write_params):
    with pytest.raises(ParamsError) as info:
        load_params(write_params("deployment: d\nseed: -4\n"))
    e = info.value
    assert (e.key_path, e.value) == ("seed", -4) and "greater than or equal to 0" in e.expected


def test_list_element_error_has_an_index_in_the_key_path(write_params):
    with pytest.raises(ParamsError) as info:
        load_params(write_params("deployment: d\nsurvey:\n  gemm_sizes: [128, x]\n"))
    assert info.value.key_path == "survey.gemm_sizes[1]"


@pytest.mark.parametrize(
    "text, key",
    [
        ("deployment: Bad Name\n", "deployment"),
        ("deployment: d\ntarget: jetson-nope\n", "target"),
        ("deployment: d\npipeline: [survey, fly]\n", "pipeline"),
        ("deployment: d\nsurvey:\n  platforms: [mars-rover]\n", "survey.platforms"),
        ("deployment: d\nrunner:\n  cell_timeout_s: 0\n", "runner.cell_timeout_s"),
        ("seed: 1\n", "deployment"),
    ],
)
def test_invalid_values_are_rejected_with_their_key(write_params, text, key):
    with pytest.raises(ParamsError) as info:
        load_params(write_params(text))
    assert info.value.key_path == key


def test_set_overrides_are_parsed_as_yaml_and_validated(write_params):
    p = load_params(write_params({"deployment": "d"}), ["survey.gemm_sizes=[64, 128]", "seed=7", "runner.progress=false"])
    assert p.section("survey").gemm_sizes == [64, 128] and p.common.seed == 7 and p.common.runner.progress is False


def test_set_error_blames_the_argument_not_the_file(write_params):
    with pytest.raises(ParamsError) as info:
        load_params(write_params({"deployment": "d"}), ["survey.gemm_repeats=0"])
    assert info.value.source == "--set survey.gemm_repeats=0"


@pytest.mark.parametrize("item", ["novalue", "=3", "a..b=1", "survey.gemm_sizes=[1,"])
def test_malformed_set_arguments_are_params_errors(item):
    with pytest.raises(ParamsError):
        parse_overrides([item])


def test_set_into_a_scalar_is_refused(write_params):
    with pytest.raises(ParamsError, match="section"):
        load_params(write_params({"deployment": "d", "seed": 3}), ["seed.x=1"])
    with pytest.raises(ParamsError) as info:  # seed not in the file: the --set still gets the blame
        load_params(write_params({"deployment": "d"}), ["seed.x=1"])
    assert info.value.source == "--set seed.x=1"


def test_notebook_parameters_are_flat_primitives(write_params):
    p = load_params(write_params({"deployment": "d"}))
    flat = notebook_parameters(p, "survey")
    assert set(flat) == set(COMMON_NOTEBOOK_KEYS) | set(SurveyParams.model_fields)
    for value in flat.values():
        assert isinstance(value, (str, int, float, bool, list))
        if isinstance(value, list):
            assert all(isinstance(v, (str, int, float, bool)) for v in value)
    assert set(notebook_parameters(p, None)) == set(COMMON_NOTEBOOK_KEYS)


def test_from_notebook_validates_hand_edited_parameters():
    ns = {"deployment": "d", "seed": 0, "target": "x86-cpu", **SurveyParams().model_dump()}
    cfg = from_notebook("survey", ns)
    assert cfg.gemm_sizes == SurveyParams().gemm_sizes and cfg.seed == 0
    with pytest.raises(ParamsError) as info:
        from_notebook("survey", {**ns, "gemm_repeats": "many"})
    assert info.value.key_path == "survey.gemm_repeats" and "notebook" in info.value.source
    with pytest.raises(ParamsError, match="parameters cell"):
        from_notebook("survey", {k: v for k, v in ns.items() if k != "threads"})
