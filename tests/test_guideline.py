"""Golden tests: every table and matrix of methodology.md §2, as the guideline preset holds them.

Each expected value is worked out by hand from the methodology text, with values exactly on
the breaks. Tables are read from the preset (so a typo there fails here), then the three
chains run on rows of hand-built cells, one scenario per column.
"""

from __future__ import annotations

import numpy as np
import pytest
from _guideline import config, run

from sanqu.config import BreakTableSpec
from sanqu.evaluate import Evaluation

CFG = config()
TABLES = CFG.tables


def classify(name: str, values: list[float]) -> list[int]:
    table = BreakTableSpec.model_validate(TABLES[name]).break_table()
    return table.classify(np.array(values, dtype=np.float64)).tolist()


# ---------------------------------------------------------------- §2.1-§2.3 break tables

BREAK_TABLES = {
    # §2.1 agriculture: ≤2, 2-6, 6-15, 15-25, >25 degrees
    "slope_agri": ([0, 2, 2.0001, 6, 6.5, 15, 24.9, 25, 25.0001, 80],
                   [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]),
    # §2.1 urban: ≤3, 3-8, 8-15, 15-25, >25 degrees
    "slope_urban": ([3, 3.1, 8, 8.1, 15, 25, 25.1], [1, 2, 2, 3, 3, 4, 5]),
    # §2.2 precipitation mm: ≥1200 → 1; 800-1200 → 2; 400-800 → 3; 200-400 → 4; <200 → 5
    "precipitation": ([1500, 1200, 1199.9, 800, 400, 399, 200, 199.9, 0],
                      [1, 1, 2, 2, 3, 4, 4, 5, 5]),
    # §2.2 aridity: ≤0.5 → 1; 0.5-1 → 2; 1-3 → 3; 3-7 → 4; >7 → 5
    "aridity": ([0.2, 0.5, 0.51, 1, 1.01, 3, 7, 7.01], [1, 1, 2, 2, 3, 3, 4, 5]),
    # §2.2 water-use quota modulus m³/km²: ≥250 000 → 1 ... <30 000 → 5
    "water_use_modulus": ([250_000, 249_999, 130_000, 129_999, 80_000, 30_000, 29_999],
                          [1, 2, 2, 3, 3, 4, 5]),
    # §2.2 total water resource modulus m³/km²: ≥500 000 → 1 ... <50 000 → 5
    "water_resource_modulus": ([500_000, 499_999, 200_000, 100_000, 50_000, 49_999],
                               [1, 2, 2, 3, 4, 5]),
    # §2.3 ≥0 °C accumulated temperature: ≥7600 → 1; 5800-7600 → 2; 4000-5800 → 3;
    # 1500-4000 → 4; <1500 → 5
    "accumulated_temperature": ([9000, 7600, 7599, 5800, 4000, 3999, 1500, 1499],
                                [1, 1, 2, 2, 3, 4, 4, 5]),
    # §2.4 soil erosion factors, 5 = most erodible
    "erosion_r": ([0, 99.9, 100, 600, 600.1], [1, 1, 3, 3, 5]),          # <100, 100-600, >600
    "erosion_ls": ([0, 49.9, 50, 300, 300.1], [1, 1, 3, 3, 5]),          # relief 0-50, 50-300, >300
    "erosion_c": ([1.0, 0.6, 0.59, 0.2, 0.19, 0.0], [1, 1, 3, 3, 5, 5]),  # ≥0.6, 0.2-0.6, <0.2
    # §2.4 SS > 3.66 → 极敏感 (1); 2.33-3.66 → 敏感 (2); < 2.33 → 一般 (3)
    "erosion_sensitivity": ([1.0, 2.32, 2.33, 3.0, 3.66, 3.6601, 5.0], [3, 3, 2, 2, 2, 1, 1]),
    # §2.4 patch concentration km²: <0.25 低 (5) ... ≥2 高 (1)
    "eco_concentration_km2": ([0.1, 0.25, 0.5, 1, 1.99, 2], [5, 4, 3, 2, 2, 1]),
    # §2.7 compactness, agriculture: ≥0.8; 0.6-0.8; 0.4-0.6; 0.2-0.4; <0.2
    "agri_compactness": ([0.9, 0.8, 0.79, 0.6, 0.59, 0.4, 0.39, 0.2, 0.19],
                         [1, 1, 2, 2, 3, 3, 4, 4, 5]),
    # §2.7 compactness, urban: 0.6-1; 0.2-0.6; <0.2
    "urban_compactness": ([1.0, 0.6, 0.59, 0.2, 0.19], [1, 1, 2, 2, 3]),
    # §2.7 patch area on plains, 亩: <150 低 ... ≥900 高
    "agri_area_plain": ([149, 150, 399, 400, 600, 899, 900], [5, 4, 4, 3, 2, 2, 1]),
    # hills: 80/150/250/400 亩
    "agri_area_hill": ([79, 80, 150, 250, 399, 400], [5, 4, 3, 2, 2, 1]),
    # urban, km²: <0.25, 0.25-0.5, 0.5-1, 1-2, ≥2
    "urban_area": ([0.24, 0.25, 0.5, 1, 2], [5, 4, 3, 2, 1]),
}


@pytest.mark.parametrize("name", list(BREAK_TABLES))
def test_break_table_on_and_between_breaks(name: str) -> None:
    values, expected = BREAK_TABLES[name]
    assert classify(name, values) == expected


def test_every_break_table_of_the_preset_is_tested() -> None:
    breaks = {k for k, v in TABLES.items() if isinstance(v, dict) and (
        "breaks" in v or "intervals" in v)}
    assert breaks == set(BREAK_TABLES)


# ---------------------------------------------------------------- matrices

MATRICES = {
    # §2.6 agriculture base, rows land, columns water
    "agri_land_water": [[1, 1, 1, 2, 5], [1, 1, 2, 3, 5], [2, 2, 3, 4, 5], [3, 4, 4, 5, 5],
                        [5, 5, 5, 5, 5]],
    # §2.6 base x climate: the same except row 2 = [1, 2, 2, 3, 5]
    "agri_base_climate": [[1, 1, 1, 2, 5], [1, 2, 2, 3, 5], [2, 2, 3, 4, 5], [3, 4, 4, 5, 5],
                          [5, 5, 5, 5, 5]],
    # §2.6 urban base
    "urban_land_water": [[1, 1, 1, 2, 3], [1, 1, 2, 2, 3], [2, 2, 3, 3, 4], [3, 4, 4, 5, 5],
                         [5, 5, 5, 5, 5]],
}

#: Level words → the grades the contiguity tables write (适宜/极重要 1, 一般适宜/重要 3, else 5).
WORD = {"极重要": 1, "重要": 3, "一般": 5, "适宜": 1, "一般适宜": 3, "不适宜": 5}


@pytest.mark.parametrize("name", list(MATRICES))
def test_decision_matrix_every_cell(name: str) -> None:
    cfg = config(edit=lambda d: None)
    rows, cols = np.meshgrid(np.arange(1, 6), np.arange(1, 6), indexing="ij")
    from sanqu import rules

    assert TABLES[name] == MATRICES[name]
    assert rules.matrix(rows, cols, cfg.tables[name]).tolist() == MATRICES[name]


def test_service_sensitivity_table() -> None:
    # §2.4: service 极重要 → 极重要; 重要 → 极重要 if 极敏感 else 重要; 一般 → the sensitivity level
    expected = [[1, 1, 1], [1, 2, 2], [1, 2, 3]]
    assert TABLES["eco_service_sensitivity"] == expected
    # the table is "the higher of the two" (methodology §2.4, first sentence)
    assert expected == [[min(s, e) for e in (1, 2, 3)] for s in (1, 2, 3)]


def test_eco_concentration_five_level_table() -> None:
    # §2.4 older variant, rows level 高..低, columns concentration 高..低
    words = [["极重要", "极重要", "极重要", "重要", "一般"],
             ["极重要", "极重要", "极重要", "重要", "一般"],
             ["重要", "重要", "重要", "重要", "一般"],
             ["重要", "重要", "重要", "一般", "一般"],
             ["一般", "一般", "一般", "一般", "一般"]]
    assert TABLES["eco_concentration"] == [[WORD[w] for w in row] for row in words]


def test_contiguity_capacity_table() -> None:
    # §2.7 capacity x contiguity, rows 高 较高 中等 较低 低, columns 高 较高 一般 较低 低
    words = [["适宜", "适宜", "适宜", "一般适宜", "不适宜"],
             ["适宜", "适宜", "一般适宜", "一般适宜", "不适宜"],
             ["一般适宜", "一般适宜", "一般适宜", "一般适宜", "不适宜"],
             ["一般适宜", "一般适宜", "一般适宜", "一般适宜", "不适宜"],
             ["不适宜", "不适宜", "不适宜", "不适宜", "不适宜"]]
    assert TABLES["contiguity_capacity"] == [[WORD[w] for w in row] for row in words]


def test_compactness_actions_and_texture_and_runoff_tables() -> None:
    assert TABLES["agri_compactness_actions"] == [{"to": 1}, {"by": -1}, {"by": 0}, {"by": 1},
                                                  {"to": 5}]
    assert TABLES["urban_compactness_actions"] == [{"by": 0}, {"by": 1}, {"to": 5}]
    # §2.4 K: gravel, clay → 1; loam, sandy loam, silty clay, loamy clay → 3; sandy silt, silt → 5
    assert TABLES["erosion_k"] == {"gravel": 1, "clay": 1, "loam": 3, "sandy_loam": 3,
                                   "silty_clay": 3, "loamy_clay": 3, "sandy_silt": 5, "silt": 5}
    assert TABLES["runoff_coefficients"] == {
        "evergreen_broadleaf_forest": 0.0267, "evergreen_needleleaf_forest": 0.0302,
        "mixed_forest": 0.0229, "deciduous_broadleaf_forest": 0.0133,
        "deciduous_needleleaf_forest": 0.0088, "sparse_forest": 0.192, "shrub": 0.042,
        "meadow": 0.082, "steppe": 0.0478, "grassland": 0.0937, "sparse_grassland": 0.1827}
    # a class mapped by name takes the guideline's number
    assert CFG.factors["water_conservation"].runoff_coefficients["forest"] == 0.0229


# ---------------------------------------------------------------- agriculture chain (§2.1-§2.6)

AGRI_NEUTRAL = {"slope": 1, "soil_silt": 0.1, "precipitation": 1300,
                "accumulated_temperature": 8000, "soil_environment": 1, "salinisation": 3,
                "meteorological_hazard": 1}

#: One scenario per cell: the inputs that differ from neutral, and the hand-worked grades of
#: land, silt, silt_high, water, base, climate, with_climate, soil_env_worst, soil_env_poor,
#: saline, met_hazard.
AGRI = [
    ({}, [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]),
    # on the breaks: slope 2 → 1; silt 0.6 → down 1; rain 1200 → 1; 7600 °C·d → 1
    ({"slope": 2, "soil_silt": 0.6, "precipitation": 1200, "accumulated_temperature": 7600},
     [1, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1]),
    # slope 6 → 2; silt 0.8 → 5; 800 mm → 2; base row 5 → 5
    ({"slope": 6, "soil_silt": 0.8, "precipitation": 800, "accumulated_temperature": 5800},
     [2, 2, 5, 2, 5, 2, 5, 5, 5, 5, 5]),
    # land 2 x water 3 → 2; base 2 x climate 2 → 2 (row 2 of the climate matrix differs);
    # soil environment 3 → down 1
    ({"slope": 4, "precipitation": 600, "accumulated_temperature": 6000, "soil_environment": 3},
     [2, 2, 2, 3, 2, 2, 2, 2, 3, 3, 3]),
    # soil environment 5 → 5 whatever else; salinisation 极敏感 clamps at 5
    ({"soil_environment": 5, "salinisation": 1, "meteorological_hazard": 5},
     [1, 1, 1, 1, 1, 1, 1, 5, 5, 5, 5]),
    # salinisation 极敏感 → 2; the hazard cap leaves grade 2 alone
    ({"salinisation": 1, "meteorological_hazard": 5}, [1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2]),
    # the highest meteorological hazard caps a grade-1 result at 2
    ({"meteorological_hazard": 5}, [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2]),
    # land 4 x water 4 → 5
    ({"slope": 16, "precipitation": 300, "accumulated_temperature": 3000},
     [4, 4, 4, 4, 5, 4, 5, 5, 5, 5, 5]),
    ({"slope": 25.0001, "precipitation": 150, "accumulated_temperature": 1000},
     [5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5]),
    # 15° → 3; 400 mm → 3; 4000 °C·d → 3; salinisation 敏感 (2) is no correction
    ({"slope": 15, "precipitation": 400, "accumulated_temperature": 4000, "salinisation": 2},
     [3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3]),
    # a cell hit by two corrections (soil environment 3, salinisation 极敏感) drops two grades
    ({"slope": 4, "soil_silt": 0.7, "precipitation": 900, "soil_environment": 3,
      "salinisation": 1}, [2, 3, 3, 2, 2, 1, 1, 1, 2, 3, 3]),
]
AGRI_STEPS = ["land", "silt", "silt_high", "water", "base", "climate", "with_climate",
              "soil_env_worst", "soil_env_poor", "saline", "met_hazard"]


def scenario_layers(neutral: dict[str, float], scenarios: list) -> dict[str, list[float]]:
    return {k: [sc[0].get(k, v) for sc in scenarios] for k, v in neutral.items()}


def test_agriculture_chain_by_hand() -> None:
    got = run(CFG, "agri_suitability", scenario_layers(AGRI_NEUTRAL, AGRI))
    for i, name in enumerate(AGRI_STEPS):
        assert got[name] == [sc[1][i] for sc in AGRI], name


# ---------------------------------------------------------------- urban chain (§2.1, §2.5, §2.6)

URBAN_NEUTRAL = {"slope": 1, "dem": 50, "relief": 10, "precipitation": 1300, "hazard_danger": 1,
                 "second_hazard": 1, "air_capacity": 1, "water_capacity": 1, "comfort": 1,
                 "drive_time": 1.5}

#: Inputs that differ from neutral; hand-worked land-chain grade (after relief_200), base,
#: and the final grade before contiguity.
URBAN = [
    ({}, 1, 1, 1),
    # slope 3 → 1; elevation 3500 → down 1; relief 100 → down 1; base row 3 → 2
    ({"slope": 3, "dem": 3500, "relief": 100}, 3, 2, 2),
    # slope 3.1 → 2; elevation 5000 → down 1; relief 200 is not above 200: one grade only
    ({"slope": 3.1, "dem": 5000, "relief": 200}, 4, 3, 3),
    # elevation above 5000 → 5; relief above 200 → two grades (clamped)
    ({"slope": 8, "dem": 5000.5, "relief": 200.5}, 5, 5, 5),
    ({"hazard_danger": 4}, 1, 1, 5),                       # 极高 → 5
    ({"hazard_danger": 3}, 1, 1, 3),                       # 高 → down 2
    ({"hazard_danger": 2, "second_hazard": 5}, 1, 1, 3),   # 中 → down 1, second hazard → down 1
    ({"air_capacity": 5, "water_capacity": 5}, 1, 1, 3),   # both worst → down 2
    ({"air_capacity": 5}, 1, 1, 2),                        # either worst → down 1
    ({"comfort": 5}, 1, 1, 2),
    ({"drive_time": 5.5}, 1, 1, 3),                        # > 5 h → down 2
    ({"drive_time": 5}, 1, 1, 2),                          # 3.5-5 h → down 1
    ({"drive_time": 3.5}, 1, 1, 1),                        # 2-3.5 h: unchanged
    ({"drive_time": 1}, 1, 1, 1),                          # ≤ 1 h: grade 1 cannot improve
    ({"slope": 10, "drive_time": 1}, 3, 2, 1),             # ... grade 2 improves to 1
    ({"slope": 20, "precipitation": 1000, "drive_time": 1}, 4, 4, 3),
    ({"slope": 30, "precipitation": 100, "drive_time": 1}, 5, 5, 5),  # grade 5 stays
]


def test_urban_chain_by_hand() -> None:
    got = run(CFG, "urban_suitability", scenario_layers(URBAN_NEUTRAL, URBAN))
    assert got["relief_200"] == [sc[1] for sc in URBAN]
    assert got["base"] == [sc[2] for sc in URBAN]
    assert got["location_best"] == [sc[3] for sc in URBAN]


# ---------------------------------------------------------------- ecology (§2.4)

def test_ecology_chain_by_hand() -> None:
    ev = Evaluation("eco_importance", CFG)
    # water conservation 60, 30, 10 (total 100): 60 holds 50 % → 极重要, 60 + 30 reach 80 %
    # → 30 is 重要; soil conservation 10, 10 (total 20): ties share the top class
    ev.fit({"water_conservation_grade": np.array([60, 30, 10, 0, 0, 0], np.float32),
            "soil_conservation_grade": np.array([0, 0, 0, 0, 10, 10], np.float32)})
    assert ev.thresholds == {"water_conservation_grade": [60.0, 30.0],
                             "soil_conservation_grade": [10.0, 10.0]}
    layers = {
        "water_conservation": [60, 30, 10, 0, 0, 0],
        "soil_conservation": [0, 0, 0, 0, 10, 10],
        "rainfall_erosivity": [50, 100, 600, 700, 50, 50],   # R → 1 3 3 5 1 1
        "soil_texture": [1, 2, 3, 3, 1, 1],                  # clay, loam, silt → K 1 3 5 5 1 1
        "relief": [10, 50, 300, 301, 10, 10],                # LS → 1 3 3 5 1 1
        "vegetation_cover": [0.8, 0.6, 0.2, 0.1, 0.8, 0.8],  # C → 1 1 3 5 1 1
        "desertification": [3, 3, 3, 3, 1, 3],
        "rocky_desertification": [3, 3, 3, 3, 3, 2],
        "salinisation": [3, 3, 3, 3, 3, 3],
    }
    arrays = {k: np.array([v], np.float32) for k, v in layers.items()}
    out, steps = ev.run(arrays, np.ones((1, 6), bool), keep=True)
    got = {k: v[0].tolist() for k, v in steps.items()}
    assert got["water_conservation_grade"] == [1, 2, 3, 3, 3, 3]
    assert got["soil_conservation_grade"] == [3, 3, 3, 3, 1, 1]
    assert got["service"] == [1, 2, 3, 3, 1, 1]
    assert got["erosion_k"] == [1, 3, 5, 5, 1, 1]
    # SS: 1 → 3; 27^(1/4) = 2.28 → 3; 135^(1/4) = 3.41 → 2; 625^(1/4) = 5 → 1
    assert got["erosion"] == [3, 3, 2, 1, 3, 3]
    # the most severe of erosion, desertification, rocky desertification, salinisation
    assert got["sensitivity"] == [3, 3, 2, 1, 1, 2]
    assert got["importance"] == [1, 2, 2, 1, 1, 1]
    assert out[0].tolist() == [1, 2, 2, 1, 1, 1]


# ---------------------------------------------------------------- contiguity (§2.7)

def test_agri_contiguity_by_patch_area() -> None:
    # 100 m cells: 1 ha = 15 亩. Grade-1 patch of 60 cells (900 亩, 高) stays 1; grade-2 patch
    # of 9 cells (135 亩, 低) → 不适宜; grade-3 patch of 27 cells (405 亩, 一般) → 一般适宜 (3);
    # grade 5 is in no patch group and stays 5.
    ev = Evaluation("agri_suitability", CFG)
    g = np.full((10, 10), 5, np.uint8)
    g[:6, :] = 1
    g[7:10, 0:3] = 2
    g[7:10, 4:10] = 3
    g[6, 4:7] = 3
    levels, kept = ev.finish(g, np.ones_like(g, bool), (100.0, 100.0), keep=True)
    c = kept["contiguity"]
    assert (c[:6] == 1).all() and (c[7:, :3] == 5).all()
    assert (c[7:, 4:] == 3).all() and (c[6, 4:7] == 3).all()
    assert (c[6, :4] == 5).all() and (c[6, 7:] == 5).all()
    assert levels[0, 0] == 1 and levels[8, 1] == 3 and levels[8, 5] == 2


def _compactness(result: str, table: str, actions: str):
    def edit(doc):
        doc.setdefault("evaluation", {})[result] = {"steps": {"contiguity": {
            "replace": True, "op": "contiguity", "measure": "compactness",
            "classes": table, "actions": actions}}}
    return config(edit=edit)


def test_compactness_variant_agri_and_urban() -> None:
    # 3 x 3 square: 9 / (π 4.5) = 0.637 (0.6-0.8); 2 x 4 block: 8 / (π 5) = 0.509 (0.4-0.6);
    # 1 x 7 strip: 7 / (π 12.5) = 0.178 (< 0.2); patches of grade 3 each
    g = np.full((9, 9), 5, np.uint8)
    g[0:3, 0:3] = 3
    g[0:2, 5:9] = 3
    g[8, 0:7] = 3
    mask = np.ones_like(g, bool)
    agri = Evaluation("agri_suitability", _compactness(
        "agri_suitability", "agri_compactness", "agri_compactness_actions"))
    _, kept = agri.finish(g, mask, (30.0, 30.0), keep=True)
    c = kept["contiguity"]
    assert c[1, 1] == 2 and c[0, 6] == 3 and c[8, 3] == 5  # up 1, unchanged, → 5
    values = agri.patches["contiguity"].values
    assert sorted(np.round(values[1:], 3).tolist()) == [0.178, 0.509, 0.637]
    urban = Evaluation("urban_suitability", _compactness(
        "urban_suitability", "urban_compactness", "urban_compactness_actions"))
    _, kept = urban.finish(g, mask, (30.0, 30.0), keep=True)
    c = kept["contiguity"]
    assert c[1, 1] == 3 and c[0, 6] == 4 and c[8, 3] == 5  # unchanged, down 1, → 5
