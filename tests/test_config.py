"""Config validation: every bad value is one message naming the key and what was expected."""

import copy

import pytest
import yaml

from sanqu import default_config_path, load_config
from sanqu.config import config_from_dict, relief_window
from sanqu.errors import ConfigError

BASE = yaml.safe_load(default_config_path().read_text(encoding="utf-8"))


def check(edit, pattern):
    data = copy.deepcopy(BASE)
    edit(data)
    with pytest.raises(ConfigError, match=pattern) as info:
        config_from_dict(data, default_config_path())
    assert "\n" not in str(info.value)
    return str(info.value)


def steps(data, result):
    return data["evaluation"].setdefault(result, {}).setdefault("steps", {})


def step(data, result, name):
    """A step of the sample config; steps only the preset defines start empty (merged)."""
    return steps(data, result).setdefault(name, {})


def test_bundled_config_loads():
    cfg = load_config(default_config_path())
    assert cfg.inputs["dem"].path.is_file()
    assert cfg.lines.ugb.expansion_factor == 1.3


def test_missing_key():
    check(lambda d: d.pop("lines"), r"dianbu\.yaml: lines: required key is missing")


def test_unknown_key():
    check(lambda d: d["grid"].update(blocksize=5), r"grid\.blocksize: unknown key")


def test_wrong_type_names_value():
    msg = check(lambda d: d["grid"].update(block_size="big"), r"grid\.block_size: ")
    assert "'big'" in msg


def test_block_size_range():
    check(lambda d: d["grid"].update(block_size=8), r"grid\.block_size: .*greater than or equal")


def test_matrix_of_wrong_size():
    def edit(d):
        step(d, "agri_suitability", "base")["table"] = [[1, 2, 3, 4, 5]] * 4
    check(edit, r"evaluation\.agri_suitability\.steps\.base\.table: expected a 5 x 5 matrix "
                r"\(rows: grades 1\.\.5 of 'silt_high', columns: grades 1\.\.5 of 'water'\), "
                r"got 4 x 5$")


def test_ragged_matrix():
    def edit(d):
        step(d, "agri_suitability", "base")["table"] = [[1, 2, 3, 4, 5], [1, 2]] * 2 + [[1] * 5]
    check(edit, r"evaluation\.agri_suitability\.steps\.base\.table: expected rows of equal")


def test_breaks_overlap():
    def edit(d):
        step(d, "agri_suitability", "land")["breaks"] = [2, 6, 6, 25]
    check(edit, r"steps\.land\.breaks: expected strictly increasing values, got \[2\.0, 6\.0")


def test_grades_count():
    def edit(d):
        step(d, "agri_suitability", "land")["grades"] = [1, 2, 3]
    check(edit, r"steps\.land\.grades: expected 5 grades for 4 breaks, got 3")


def test_weights_must_sum_to_one():
    def edit(d):
        steps(d, "urban_suitability")["base"] = {
            "replace": True, "op": "weighted_sum",
            "weights": {"relief_200": 0.5, "location": 0.3, "water": 0.15}}
    check(edit, r"steps\.base\.weights: must sum to 1, got 0\.95")


def test_ahp_consistency_ratio_too_high():
    def edit(d):
        step(d, "urban_suitability", "base")["ahp"] = [
            [1, 9, "1/9"], ["1/9", 1, 9], [9, "1/9", 1]]
    msg = check(edit, r"evaluation\.urban_suitability\.steps\.base\.ahp: consistency ratio")
    assert "below 0.10" in msg


def test_ahp_inconsistency_accepted_explicitly():
    data = copy.deepcopy(BASE)
    combined = step(data, "urban_suitability", "base")
    combined["ahp"] = [[1, 9, "1/9"], ["1/9", 1, 9], [9, "1/9", 1]]
    combined["accept_inconsistent"] = True
    config_from_dict(data, default_config_path())


def test_unknown_landuse_class_in_table():
    def edit(d):
        steps(d, "eco_importance")["service"]["table"]["orchard"] = 2
    check(edit, r"steps\.service\.table: unknown land-use class 'orchard'")


def test_unknown_step_reference():
    def edit(d):
        step(d, "agri_suitability", "base")["rows"] = "soil_grade"
    check(edit, r"steps\.base\.rows: 'soil_grade' is not an input, factor or earlier step")


def test_unknown_op():
    def edit(d):
        step(d, "agri_suitability", "base")["op"] = "magic"
    check(edit, r"evaluation\.agri_suitability\.steps\.base: .*'magic'")


def test_last_step_must_collapse():
    def edit(d):
        steps(d, "agri_suitability")["level"] = None  # null removes the preset's step
    check(edit, r"evaluation\.agri_suitability\.steps: expected the last step to be a collapse")


def test_grades_outside_scale():
    def edit(d):
        steps(d, "agri_suitability")["not_farmable"]["grade"] = 7
    check(edit, r"steps\.not_farmable\.grade: expected grades 1\.\.5, got \[7\]")


def test_landuse_code_in_two_classes():
    check(lambda d: d["landuse"]["classes"]["water"].append(1),
          r"landuse\.classes\.water: code 1 is already in class 'cultivated'")


def test_unknown_class_in_lines():
    check(lambda d: d["lines"]["ugb"].update(seed_classes=["towns"]),
          r"lines\.ugb\.seed_classes: unknown land-use class 'towns'")


def test_ugb_needs_a_cap():
    check(lambda d: d["lines"]["ugb"].update(expansion_factor=None),
          r"lines\.ugb: expected expansion_factor or cap_ha")


def test_expansion_factor_below_one():
    check(lambda d: d["lines"]["ugb"].update(expansion_factor=0.8),
          r"lines\.ugb\.expansion_factor: .*greater than or equal to 1")


def test_grid_reference_must_be_input():
    check(lambda d: d["grid"].update(reference="elevation"),
          r"grid\.reference: 'elevation' is not a key of inputs")


def test_missing_and_invalid_yaml_files(tmp_path):
    with pytest.raises(ConfigError, match=r"nope\.yaml: config file not found"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("grid: [unclosed\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"bad\.yaml: not valid YAML at line"):
        load_config(bad)


def test_paths_resolve_against_the_config_folder():
    cfg = load_config(default_config_path())
    assert cfg.inputs["landuse"].path == default_config_path().parent.parent / (
        "data/dianbu/landuse_30m.tif")


def test_relief_window_by_cell_size():
    assert [relief_window("auto", c) for c in (5, 29.9, 30, 50, 99, 100, 250)] == [
        15, 15, 12, 9, 9, 3, 3]
    assert relief_window(7, 30) == 7


def test_areas_take_units():
    data = copy.deepcopy(BASE)
    data["lines"]["red_line"]["min_area_ha"] = "200 m2"
    data["lines"]["farmland"]["min_area_ha"] = "15 亩"
    cfg = config_from_dict(data, default_config_path())
    assert cfg.lines.red_line.min_area_ha == pytest.approx(0.02)
    assert cfg.lines.farmland.min_area_ha == pytest.approx(1.0)
    check(lambda d: d["lines"]["ugb"].update(min_area_ha="-2 ha"),
          r"lines\.ugb\.min_area_ha: .*greater than or equal to 0")


def test_unit_quotas_need_units_and_codes_become_text():
    msg = check(lambda d: d.pop("units"), r"lines\.farmland\.unit_quotas: per-unit quotas need")
    assert "units" in msg
    data = copy.deepcopy(BASE)
    data["lines"]["farmland"]["unit_quotas"] = {340122: 5, "SYN01": "300 亩"}
    cfg = config_from_dict(data, default_config_path())
    assert cfg.lines.farmland.unit_quotas == {"340122": 5.0, "SYN01": 20.0}


def test_quota_table_is_read_on_load(tmp_path):
    cfg = load_config(default_config_path())
    assert cfg.lines.farmland.unit_quotas == {"SYN01": 720.0, "SYN02": 660.0, "SYN03": 620.0}
    table = tmp_path / "q.csv"
    table.write_text("code,quota_ha\nA,1\nA,2\n", encoding="utf-8")
    check(lambda d: d["lines"]["farmland"].update(unit_quotas=str(table)),
          r"lines\.farmland\.unit_quotas: q\.csv line 3: code 'A' is listed twice")
    table.write_text("code,area\nA,1\n", encoding="utf-8")
    check(lambda d: d["lines"]["farmland"].update(unit_quotas=str(table)),
          r"unit_quotas: q\.csv: expected columns code and quota_ha, missing \['quota_ha'\]")
    table.write_text("code,quota_ha\nA,lots\n", encoding="utf-8")
    check(lambda d: d["lines"]["farmland"].update(unit_quotas=str(table)),
          r"unit_quotas: q\.csv line 2: quota_ha: expected an area, got 'lots'")


def test_farmland_quality_checks():
    check(lambda d: d["lines"]["farmland"]["quality"].update(weights={"slope": 0.5}),
          r"lines\.farmland\.quality\.weights: must sum to 1, got 0\.5")
    check(lambda d: d["lines"]["farmland"]["quality"].update(near_factor=None),
          r"lines\.farmland\.quality\.near_factor: a near_built weight needs")
    check(lambda d: d["lines"]["farmland"]["quality"].update(near_factor="slope"),
          r"lines\.farmland\.quality\.near_factor: 'slope' is not a distance factor")
    check(lambda d: d["lines"]["farmland"]["quality"].update(slope_breaks=[6, 2]),
          r"quality\.slope_breaks: expected strictly increasing values")


def test_allocation_order_and_classes():
    check(lambda d: d["allocation"].update(order=["protected", "protected"]),
          r"allocation\.order: expected each rule at most once")
    check(lambda d: d["allocation"].update(order=["towns"]), r"allocation\.order\.0: ")
    check(lambda d: d["allocation"].update(built_up_classes=["towns"]),
          r"allocation\.built_up_classes: unknown land-use class 'towns'")


def test_ugb_flexible_share_range():
    check(lambda d: d["lines"]["ugb"].update(flexible_share=1.0),
          r"lines\.ugb\.flexible_share: .*less than 1")
