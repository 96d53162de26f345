"""``extends:`` and the key-by-key merge, named tables, optional inputs, and the config errors
of the evaluation engine: each one line naming the key, the value and what was expected."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from _guideline import document, eco_by_landuse

from sanqu.config import config_from_dict, load_config
from sanqu.errors import ConfigError
from sanqu.evaluate import Evaluation
from sanqu.presets import expand, merge, preset_names


def error(edit, *needles: str, present=None) -> str:
    doc = document() if present is None else eco_by_landuse(document(present))
    edit(doc)
    with pytest.raises(ConfigError) as info:
        config_from_dict(doc)
    msg = str(info.value)
    assert "\n" not in msg
    for needle in needles:
        assert needle in msg, f"{needle!r} not in: {msg}"
    return msg


def steps(doc, result):
    return doc.setdefault("evaluation", {}).setdefault(result, {}).setdefault("steps", {})


def step(doc, result, name):
    return steps(doc, result).setdefault(name, {})


# ---------------------------------------------------------------- merging


def test_preset_is_shipped_as_package_data() -> None:
    assert "guideline" in preset_names()


def test_mappings_merge_lists_replace_null_removes() -> None:
    base = {"a": {"x": 1, "y": [1, 2, 3]}, "b": {"z": 1}, "c": 5}
    over = {"a": {"y": [9], "w": 2}, "b": None, "c": None}
    assert merge(base, over) == {"a": {"x": 1, "y": [9], "w": 2}, "c": None}


def test_replace_true_drops_the_preset_keys() -> None:
    assert merge({"s": {"op": "reclass", "breaks": [1], "closed": "left"}},
                 {"s": {"replace": True, "op": "lookup"}}) == {"s": {"op": "lookup"}}


def test_step_override_merges_key_by_key() -> None:
    doc = document()
    step(doc, "agri_suitability", "land")["breaks"] = [3, 6, 15, 25]
    cfg = config_from_dict(doc)
    land = cfg.evaluation["agri_suitability"].steps["land"]
    assert land.breaks == [3, 6, 15, 25] and land.layer == "slope" and land.closed == "right"


def test_new_steps_take_their_place_with_before_and_after() -> None:
    doc = document()
    step(doc, "agri_suitability", "late")
    steps(doc, "agri_suitability")["late"] = {"after": "met_hazard", "op": "constrain",
                                              "when": {"layer": "landuse", "in": ["water"]}}
    steps(doc, "agri_suitability")["early"] = {"before": "land", "op": "reclass",
                                               "layer": "slope", "breaks": [1]}
    names = list(config_from_dict(doc).evaluation["agri_suitability"].steps)
    assert names[0] == "early"
    assert names[names.index("met_hazard") + 1] == "late"
    assert names[-2:] == ["contiguity", "level"]


def test_bad_position_names_the_key() -> None:
    error(lambda d: steps(d, "agri_suitability").update(x={"after": "nope", "op": "collapse"}),
          "evaluation.agri_suitability.steps.x.after: 'nope' is not another step")


def test_new_step_without_position_lands_after_the_collapse() -> None:
    error(lambda d: steps(d, "agri_suitability").update(
        x={"op": "constrain", "when": {"layer": "landuse", "in": ["water"]}}),
        "evaluation.agri_suitability.steps: expected the last step to be a collapse")


def test_extends_a_file_relative_to_the_config(tmp_path: Path) -> None:
    regional = tmp_path / "presets" / "regional.yaml"
    regional.parent.mkdir()
    regional.write_text(yaml.safe_dump({
        "extends": "guideline",
        "tables": {"slope_agri": {"breaks": [3, 8, 15, 25]}},
        "inputs": {"dem": {"path": "dem.tif"}},
    }), encoding="utf-8")
    doc = document()
    doc["extends"] = "presets/regional.yaml"
    del doc["inputs"]["dem"]
    study = tmp_path / "study.yaml"
    study.write_text(yaml.safe_dump(doc), encoding="utf-8")
    cfg = load_config(study)
    assert cfg.evaluation["agri_suitability"].steps["land"].breaks == [3, 8, 15, 25]
    assert cfg.inputs["dem"].path == regional.parent / "dem.tif"  # relative to the preset
    assert cfg.extends == "presets/regional.yaml"


def test_extends_cycle_and_unknown_preset(tmp_path: Path) -> None:
    a = tmp_path / "a.yaml"
    a.write_text("extends: a.yaml\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="extends itself"):
        expand({"extends": "a.yaml"}, tmp_path)
    error(lambda d: d.update(extends="guidelines"), "extends: unknown preset 'guidelines'",
          "expected one of ['guideline']")


def test_error_in_a_preset_key_says_so() -> None:
    msg = error(lambda d: d["inputs"].pop("dem"), "inputs.dem.path: required key is missing")
    assert msg.endswith("(set by preset 'guideline')")


def test_error_in_a_named_table_says_which() -> None:
    def edit(d):
        d["tables"] = {"agri_land_water": [[1, 1, 1, 2, 5]] * 4}
    error(edit, "evaluation.agri_suitability.steps.base.table: expected a 5 x 5 matrix",
          "got 4 x 5", "(from tables.agri_land_water)")


def test_unknown_table_name() -> None:
    error(lambda d: step(d, "agri_suitability", "base").update(table="agri_land_wtaer"),
          "evaluation.agri_suitability.steps.base.table: 'agri_land_wtaer' is not a key of "
          "tables")


# ---------------------------------------------------------------- optional inputs


def test_missing_optional_inputs_skip_steps_with_notes() -> None:
    cfg = config_from_dict(eco_by_landuse(document(present=())))
    agri = Evaluation("agri_suitability", cfg)
    status = {p.name: p.status for p in agri.plan}
    assert status["land"] == "run"
    assert status["silt"] == status["met_hazard"] == "pass"  # corrections: grade unchanged
    assert status["water"] == "absent" and status["base"] == "pass"  # land passes on
    assert any("steps.silt: skipped, needs 'soil_silt' (inputs.soil_silt is optional and "
               "has no path); 'land' passes on unchanged" in n for n in agri.notes())


def test_combination_leaves_out_absent_layers() -> None:
    cfg = config_from_dict(eco_by_landuse(document(present=(
        "desertification", "rainfall_erosivity", "soil_texture", "vegetation_cover"))))
    eco = {p.name: p for p in Evaluation("eco_importance", cfg).plan}
    assert eco["sensitivity"].status == "run"
    assert "rocky_desertification" in eco["sensitivity"].note


def test_required_step_with_missing_input_is_an_error() -> None:
    error(lambda d: step(d, "agri_suitability", "silt").update(required=True),
          "evaluation.agri_suitability.steps.silt: required, but needs 'soil_silt'",
          present=())


def test_result_that_cannot_be_computed_names_the_step() -> None:
    doc = document(present=("rainfall_erosivity",))
    with pytest.raises(ConfigError, match=(
            r"^config: evaluation\.eco_importance\.steps\.water_conservation_grade: the result "
            r"depends on this step, which cannot run: inputs\.precipitation is optional and has "
            r"no path \(give the input a path, or override the step\) \(set by preset "
            r"'guideline'\)$")):
        config_from_dict(doc)


def test_non_optional_input_needs_a_path() -> None:
    error(lambda d: d["inputs"].update(precipitation={"optional": False}),
          "inputs.precipitation.path: required key is missing (or set optional: true)")


def test_optional_input_cannot_be_the_grid_reference() -> None:
    error(lambda d: d["grid"].update(reference="drive_time"),
          "grid.reference: 'drive_time' is an optional input without a path", present=())


# ---------------------------------------------------------------- break tables


def _intervals(*items):
    return lambda d: step(d, "agri_suitability", "land").update(
        replace=True, op="reclass", layer="slope", intervals=list(items))


def test_interval_table_with_a_gap() -> None:
    error(_intervals({"le": 2, "grade": 1}, {"gt": 3, "grade": 2}),
          "evaluation.agri_suitability.steps.land.intervals: gap: no interval holds the "
          "values between intervals [0] {le 2} and [1] {gt 3}")


def test_interval_table_with_a_gap_at_one_point() -> None:
    error(_intervals({"lt": 2, "grade": 1}, {"gt": 2, "grade": 2}),
          "steps.land.intervals: gap", "[0] {lt 2}", "[1] {gt 2}")


def test_interval_table_with_an_overlap() -> None:
    error(_intervals({"le": 2, "grade": 1}, {"ge": 2, "grade": 2}),
          "steps.land.intervals: overlap: intervals [0] {le 2} and [1] {ge 2} share values")


def test_interval_table_must_reach_both_ends() -> None:
    error(_intervals({"ge": 0, "lt": 2, "grade": 1}, {"ge": 2, "grade": 2}),
          "steps.land.intervals: gap: no interval holds values below {ge 0, lt 2}")


def test_interval_table_in_any_order_compiles() -> None:
    doc = document()
    _intervals({"gt": 2, "grade": 2}, {"le": 2, "grade": 1})(doc)
    land = config_from_dict(doc).evaluation["agri_suitability"].steps["land"]
    t = land.break_table()
    assert (t.breaks, t.grades, t.right_closed) == ((2.0,), (1, 2), (True,))


def test_compact_break_table_overlap() -> None:
    error(lambda d: step(d, "agri_suitability", "land").update(breaks=[2, 6, 6, 25]),
          "evaluation.agri_suitability.steps.land.breaks: expected strictly increasing values, "
          "got [2.0, 6.0, 6.0, 25.0]")


# ---------------------------------------------------------------- the other errors of the issue


def test_matrix_of_the_wrong_size_for_its_layers() -> None:
    # service and sensitivity have 3 levels: the matrix must be 3 x 3
    error(lambda d: step(d, "eco_importance", "importance").update(table="agri_land_water"),
          "evaluation.eco_importance.steps.importance.table: expected a 3 x 3 matrix (rows: "
          "grades 1..3 of 'service', columns: grades 1..3 of 'sensitivity'), got 5 x 5")


def test_n_by_m_matrix() -> None:
    def edit(d):
        steps(d, "eco_importance")["importance"] = {
            "replace": True, "op": "matrix", "rows": "erosion_r", "cols": "sensitivity",
            "table": [[1, 1, 2], [1, 2, 2], [1, 2, 3], [2, 2, 3], [2, 3, 3]], "scale": 3}
    cfg = config_from_dict((lambda d: (edit(d), d)[1])(document()))
    assert cfg.evaluation["eco_importance"].steps["importance"].table[4] == [2, 3, 3]


def test_matrix_on_a_layer_of_values() -> None:
    error(lambda d: step(d, "agri_suitability", "base").update(cols="precipitation"),
          "steps.base.cols: 'precipitation' holds values, not grades")


def test_weights_not_summing_to_one() -> None:
    error(lambda d: steps(d, "urban_suitability").update(base={
        "replace": True, "op": "weighted_sum", "weights": {"relief_200": 0.6, "water": 0.3}}),
        "evaluation.urban_suitability.steps.base.weights: must sum to 1, got 0.9")


def test_weights_over_layers_of_different_scales() -> None:
    error(lambda d: steps(d, "eco_importance").update(importance={
        "replace": True, "op": "weighted_sum", "weights": {"service": 0.5, "erosion_r": 0.5}}),
        "steps.importance.layers: expected grade layers of one scale, got "
        "service 1..3, erosion_r 1..5")


def test_ahp_consistency_ratio_too_high() -> None:
    error(lambda d: steps(d, "urban_suitability").update(base={
        "replace": True, "op": "weighted_sum", "layers": ["relief_200", "water", "relief_100"],
        "ahp": [[1, 9, "1/9"], ["1/9", 1, 9], [9, "1/9", 1]]}),
        "evaluation.urban_suitability.steps.base.ahp: consistency ratio", "must be below 0.10")


def test_unknown_landuse_code_in_a_lookup_table() -> None:
    error(lambda d: steps(d, "eco_importance").update(service={
        "replace": True, "op": "lookup", "layer": "landuse", "scale": 3,
        "table": {"cultivated": 3, "forest": 1, "built": 3, "water": 1, "grassland": 2,
                  99: 1}}),
        "evaluation.eco_importance.steps.service.table: land-use code 99 is in no class of "
        "landuse.classes; expected one of [1, 2, 3, 4, 5]")


def test_unknown_landuse_class_in_a_lookup_table() -> None:
    error(lambda d: steps(d, "eco_importance").update(service={
        "replace": True, "op": "lookup", "layer": "landuse", "scale": 3,
        "table": {"orchard": 1}}),
        "steps.service.table: unknown land-use class 'orchard'")


def test_lookup_table_missing_a_class() -> None:
    error(lambda d: steps(d, "eco_importance").update(service={
        "replace": True, "op": "lookup", "layer": "landuse", "scale": 3,
        "table": {"cultivated": 3, "forest": 1}}),
        "steps.service.table: no grade for land-use class 'built'; expected a grade for every "
        "class (or default)")


def test_unknown_soil_texture_class() -> None:
    error(lambda d: step(d, "eco_importance", "erosion_k").update(table={"peat": 1}),
          "steps.erosion_k.table: unknown 'soil_texture' class 'peat'")


def test_contiguity_actions_one_per_class() -> None:
    error(lambda d: step(d, "agri_suitability", "contiguity").update(
        replace=True, op="contiguity", measure="compactness", classes="agri_compactness",
        actions=[{"by": 0}]),
        "steps.contiguity.actions: expected 5 actions, one per contiguity class 1..5, got 1")


def test_contiguity_only_before_the_collapse() -> None:
    error(lambda d: step(d, "agri_suitability", "contiguity").update(before="met_hazard"),
          "evaluation.agri_suitability.steps.contiguity: a contiguity step works on the whole "
          "area, so only the final collapse may follow it")


def test_runoff_coefficients_cover_every_class_when_computed() -> None:
    error(lambda d: d["factors"]["water_conservation"]["runoff_coefficients"].pop("built"),
          "factors.water_conservation.runoff_coefficients: no coefficient for land-use classes "
          "['built']")
    # not checked when the factor cannot run (no precipitation)
    doc = document(present=("rainfall_erosivity", "soil_erodibility", "cover_management",
                            "vegetation_cover", "soil_texture"))
    doc["factors"]["water_conservation"]["runoff_coefficients"].pop("built")
    steps(doc, "eco_importance")["water_conservation_grade"] = None
    steps(doc, "eco_importance")["service"] = {"layers": ["soil_conservation_grade"]}
    config_from_dict(doc)


def test_unknown_runoff_coefficient_name() -> None:
    error(lambda d: d["factors"]["water_conservation"]["runoff_coefficients"].update(
        forest="mixed_forests"),
        "factors.water_conservation.runoff_coefficients.forest: 'mixed_forests' is not a key of "
        "tables.runoff_coefficients")


def test_share_grades_an_input_or_factor() -> None:
    error(lambda d: step(d, "eco_importance", "soil_conservation_grade").update(
        layer="water_conservation_grade"),
        "evaluation.eco_importance.steps.soil_conservation_grade.layer: "
        "'water_conservation_grade' is a step; expected an input or a factor")
