"""Golden and property tests of the evaluation operators (sanqu.rules)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from sanqu import rules
from sanqu.errors import ConfigError

AGRI = [[1, 1, 1, 2, 5], [1, 1, 2, 3, 5], [2, 2, 3, 4, 5], [3, 4, 4, 5, 5], [5, 5, 5, 5, 5]]
URBAN = [[1, 1, 1, 2, 3], [1, 1, 2, 2, 3], [2, 2, 3, 3, 4], [3, 4, 4, 5, 5], [5, 5, 5, 5, 5]]


def test_farmland_slope_classes_on_and_between_breaks():
    # §2.1 agriculture: <=2 -> 1, 2-6 -> 2, 6-15 -> 3, 15-25 -> 4, >25 -> 5 (right-closed)
    slope = np.array([0.0, 2.0, 2.0001, 6.0, 6.5, 15.0, 24.9, 25.0, 25.0001, 80.0])
    assert rules.reclass(slope, [2, 6, 15, 25]).tolist() == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]


def test_urban_slope_classes():
    slope = np.array([3.0, 3.1, 8.0, 8.1, 15.0, 25.0, 25.1])
    assert rules.reclass(slope, [3, 8, 15, 25]).tolist() == [1, 2, 2, 3, 3, 4, 5]


def test_precipitation_left_closed_descending_grades():
    # §2.2: >=1200 -> 1; 800-1200 -> 2; 400-800 -> 3; 200-400 -> 4; <200 -> 5
    p = np.array([1500, 1200, 1199.9, 800, 400, 399, 200, 199.9, 0])
    got = rules.reclass(p, [200, 400, 800, 1200], [5, 4, 3, 2, 1], closed="left")
    assert got.tolist() == [1, 1, 2, 2, 3, 4, 4, 5, 5]


@pytest.mark.parametrize("table", [AGRI, URBAN])
def test_matrix_every_cell(table):
    rows, cols = np.meshgrid(np.arange(1, 6), np.arange(1, 6), indexing="ij")
    assert rules.matrix(rows, cols, table).tolist() == table


def test_matrix_zero_outside():
    assert rules.matrix(np.array([0, 3]), np.array([2, 0]), AGRI).tolist() == [0, 0]


def test_lookup_unknown_code_names_key():
    with pytest.raises(ConfigError, match=r"evaluation\.x\.table: code 7 occurs"):
        rules.lookup(np.array([1, 7]), {1: 2}, key="evaluation.x.table")


def test_lookup_ignores_codes_outside_mask():
    out = rules.lookup(np.array([1, 7]), {1: 2}, np.array([True, False]))
    assert out.tolist() == [2, 0]


def test_two_corrections_drop_two_grades():
    g = np.array([1, 2, 4, 5], np.uint8)
    hit = np.ones(4, bool)
    once = rules.downgrade(g, hit, by=1)
    twice = rules.downgrade(once, hit, by=1)
    assert once.tolist() == [2, 3, 5, 5]
    assert twice.tolist() == [3, 4, 5, 5]


def test_set_to_grade_and_upgrade_only_some_grades():
    g = np.array([1, 2, 3, 4, 5], np.uint8)
    # §2.5 location: best location upgrades grades 2-4 by one
    up = rules.downgrade(g, np.ones(5, bool), by=-1, only_grades=[2, 3, 4])
    assert up.tolist() == [1, 1, 2, 3, 5]
    # soil environment grade 5 -> result 5
    assert rules.downgrade(g, np.array([1, 0, 1, 0, 0], bool), to=5).tolist() == [5, 2, 5, 4, 5]


def test_collapse_to_three_levels():
    assert rules.collapse(np.arange(6), [[1, 2], [3, 4], [5]]).tolist() == [0, 1, 1, 2, 2, 3]


def test_worst_and_best():
    a, b = np.array([1, 5, 3]), np.array([2, 1, 3])
    assert rules.worst([a, b]).tolist() == [2, 5, 3]
    assert rules.best([a, b]).tolist() == [1, 1, 3]


def test_ahp_published_example():
    # Saaty-style 3x3 example: weights 0.637, 0.258, 0.105; lambda_max 3.039; CR 0.033
    w, cr = rules.ahp_weights([[1, 3, 5], [1 / 3, 1, 3], [1 / 5, 1 / 3, 1]])
    assert np.round(w, 3).tolist() == [0.637, 0.258, 0.105]
    assert cr == pytest.approx(0.0332, abs=5e-4)


def test_ahp_inconsistent_matrix_has_high_cr():
    # a > b (9), b > c (9), but c > a (9): circular judgements
    _, cr = rules.ahp_weights([[1, 9, 1 / 9], [1 / 9, 1, 9], [9, 1 / 9, 1]])
    assert cr > 0.10


def test_ahp_rejects_non_reciprocal():
    with pytest.raises(ConfigError, match="reciprocal"):
        rules.ahp_weights([[1, 2], [2, 1]])


def test_to_grade_rounds_halves_to_worse():
    assert rules.to_grade(np.array([1.5, 2.49, 4.5]), 5).tolist() == [2, 2, 5]


def test_condition_edges():
    x = np.array([99.9, 100, 200, 200.1])
    assert rules.condition(x, ge=100, le=200).tolist() == [False, True, True, False]
    assert rules.condition(x, gt=100, lt=200).tolist() == [False, False, False, False]
    assert rules.condition(np.array([1, 2, 3]), isin=[1, 3]).tolist() == [True, False, True]


grades = hnp.arrays(np.uint8, st.integers(1, 20), elements=st.integers(1, 5))


@st.composite
def layers_and_weights(draw):
    n = draw(st.integers(1, 5))
    size = draw(st.integers(1, 20))
    layers = [draw(hnp.arrays(np.uint8, size, elements=st.integers(1, 5))) for _ in range(n)]
    raw = draw(st.lists(st.floats(0.01, 1.0), min_size=n, max_size=n))
    weights = [r / sum(raw) for r in raw]
    return layers, weights


@settings(max_examples=100, deadline=None)
@given(layers_and_weights())
def test_weighted_sum_stays_within_input_range(lw):
    layers, weights = lw
    s = rules.weighted_sum(layers, weights)
    lo = np.minimum.reduce(layers).astype(np.float32)
    hi = np.maximum.reduce(layers).astype(np.float32)
    assert (s >= lo - 1e-4).all() and (s <= hi + 1e-4).all()
    g = rules.to_grade(s, 5)
    assert (g >= lo).all() and (g <= hi).all()


@settings(max_examples=100, deadline=None)
@given(layers_and_weights(), st.randoms(use_true_random=False))
def test_permuting_layers_with_weights_changes_nothing(lw, rnd):
    layers, weights = lw
    order = list(range(len(layers)))
    rnd.shuffle(order)
    a = rules.weighted_sum(layers, weights)
    b = rules.weighted_sum([layers[i] for i in order], [weights[i] for i in order])
    np.testing.assert_allclose(a, b, atol=1e-5)


@settings(max_examples=100, deadline=None)
@given(grades, st.integers(0, 4), st.data())
def test_downgrade_never_improves(g, by, data):
    hit = data.draw(hnp.arrays(bool, g.shape))
    out = rules.downgrade(g, hit, by=by)
    assert (out >= g).all()
    assert (out[~hit] == g[~hit]).all()
    assert out.max() <= 5


# ---------------------------------------------------------------- break tables, n x m, share


@st.composite
def break_tables(draw):
    n = draw(st.integers(1, 5))
    breaks = sorted(draw(st.sets(st.integers(-50, 50), min_size=n, max_size=n)))
    grades = draw(st.lists(st.integers(1, 5), min_size=n + 1, max_size=n + 1))
    closed = draw(st.sampled_from(["right", "left"]))
    return [float(b) for b in breaks], grades, closed


@settings(max_examples=100, deadline=None)
@given(break_tables(), st.lists(st.integers(-60, 60), min_size=1, max_size=30))
def test_interval_form_equals_compact_form(table, values):
    from sanqu.config import BreakTableSpec

    breaks, grades, closed = table
    lo_key, hi_key = ("gt", "le") if closed == "right" else ("ge", "lt")
    intervals = []
    for i, g in enumerate(grades):
        iv = {"grade": g}
        if i > 0:
            iv[lo_key] = breaks[i - 1]
        if i < len(breaks):
            iv[hi_key] = breaks[i]
        intervals.append(iv)
    v = np.array(values + breaks, dtype=np.float64)  # every break value too
    compact = rules.reclass(v, breaks, grades, closed)
    spec = BreakTableSpec.model_validate({"intervals": intervals[::-1]})  # order is free
    assert spec.break_table().classify(v).tolist() == compact.tolist()


@settings(max_examples=100, deadline=None)
@given(break_tables(), st.lists(st.floats(-60, 60), min_size=2, max_size=30))
def test_reclass_with_increasing_grades_is_monotone(table, values):
    breaks, _, closed = table
    v = np.sort(np.array(values))
    g = rules.reclass(v, breaks, None, closed)
    assert (np.diff(g.astype(int)) >= 0).all()


@settings(max_examples=100, deadline=None)
@given(grades, st.data())
def test_chained_corrections_never_improve(g, data):
    out = g
    for _ in range(data.draw(st.integers(1, 6))):
        hit = data.draw(hnp.arrays(bool, g.shape))
        if data.draw(st.booleans()):
            new = rules.downgrade(out, hit, by=data.draw(st.integers(0, 3)))
        else:  # constraint to the worst grade, or a cap that only touches better grades
            to = data.draw(st.integers(1, 5))
            new = rules.downgrade(out, hit, to=to, only_grades=list(range(1, to + 1)))
        assert (new >= out).all()
        out = new
    assert (out >= g).all() and out.max() <= 5


@settings(max_examples=100, deadline=None)
@given(st.lists(hnp.arrays(np.uint8, 8, elements=st.integers(1, 3)), min_size=1, max_size=5),
       st.randoms(use_true_random=False))
def test_most_severe_is_the_smallest_level_whatever_the_order(layers, rnd):
    got = rules.most_severe(layers)
    assert got.tolist() == np.min(np.stack(layers), axis=0).tolist()
    shuffled = list(layers)
    rnd.shuffle(shuffled)
    assert rules.most_severe(shuffled).tolist() == got.tolist()


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 6), st.integers(1, 6), st.data())
def test_matrix_n_by_m_looks_up_every_cell(n, m, data):
    table = [[data.draw(st.integers(1, 5)) for _ in range(m)] for _ in range(n)]
    rows, cols = np.meshgrid(np.arange(1, n + 1), np.arange(1, m + 1), indexing="ij")
    assert rules.matrix(rows, cols, table).tolist() == table


@settings(max_examples=100, deadline=None)
@given(hnp.arrays(np.float64, st.integers(1, 60),
                  elements=st.floats(0, 1000, allow_subnormal=False)),
       st.floats(0.05, 1.0))
def test_share_threshold_is_the_smallest_top_set(values, share):
    (t,) = rules.share_thresholds(values, [share])
    total = values[values > 0].sum()
    if total == 0:
        assert t == np.inf
        return
    top = values[values >= t].sum()
    assert top >= share * total * (1 - 1e-9)          # the top class holds the share
    assert values[values > t].sum() < share * total   # and no smaller top set does


def test_two_shares_of_a_hand_example():
    v = np.array([5.0, 1, 1, 1, 1, 1, 0, -2])  # total 10 (negatives never count)
    assert rules.share_thresholds(v, [0.5, 0.8]) == [5.0, 1.0]
    table = rules.share_table([5.0, 1.0], [1, 2, 3])
    assert table.classify(v).tolist() == [1, 2, 2, 2, 2, 2, 3, 3]


def test_lookup_of_unsigned_and_signed_codes_agree():
    table = {1: 2, 33: 1, 300: 4}
    codes = np.array([1, 33, 300, 7])
    for dtype in (np.uint16, np.int16, np.int64, np.float32):
        got = rules.lookup(codes.astype(dtype), table, default=5)
        assert got.tolist() == [2, 1, 4, 5], dtype
    assert rules.lookup(np.array([-1], np.int16), {0: 1}, default=5).tolist() == [5]


def _searchsorted_index(table: rules.BreakTable, values: np.ndarray) -> np.ndarray:
    """The class index by binary search over float64 edges (the reference)."""
    b = np.asarray(table.breaks, dtype=np.float64)
    idx = np.searchsorted(b, values, side="left")
    at = idx.clip(0, len(b) - 1)
    upper = np.asarray([not rc for rc in table.right_closed])
    return idx + ((idx < len(b)) & (values == b[at]) & upper[at])


@settings(max_examples=200, deadline=None)
@given(edges=st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=5, unique=True),
       closed=st.lists(st.booleans(), min_size=5, max_size=5),
       grades=st.lists(st.integers(1, 9), min_size=6, max_size=6),
       noise=st.lists(st.floats(-1e6, 1e6, width=32), max_size=20))
def test_break_table_equals_a_binary_search_on_float64_edges(edges, closed, grades, noise):
    # float32 values right next to each edge, on it, NaN and infinities classify as the
    # float64 binary search does (NaN above every edge)
    edges = sorted(edges)
    table = rules.BreakTable(tuple(edges), tuple(grades[: len(edges) + 1]),
                             tuple(closed[: len(edges)]))
    near = [np.nextafter(np.float32(e), np.float32(d)) for e in edges for d in (-np.inf, np.inf)]
    values = np.array([*near, *map(np.float32, edges), *noise, np.nan, np.inf, -np.inf],
                      dtype=np.float32)
    for v in (values, values.astype(np.float64)):
        expected = _searchsorted_index(table, v)
        assert table.index(v).tolist() == expected.tolist()
        assert table.classify(v).tolist() == np.asarray(grades, np.uint8)[expected].tolist()


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int16, np.int32, np.float32])
def test_one_of_equals_isin(dtype):
    values = np.arange(-3, 300).astype(dtype)
    for codes in ([5], [5, 6, 7], [1, 33, 104], [250, 299, 70000], []):
        assert rules.one_of(values, codes).tolist() == np.isin(values, codes).tolist()


def test_matrix_on_bytes_equals_fancy_indexing():
    rng = np.random.default_rng(0)
    rows, cols = (rng.integers(0, 6, (40, 30)).astype(np.uint8) for _ in range(2))
    t = np.zeros((6, 6), np.uint8)
    t[1:, 1:] = AGRI
    assert rules.matrix(rows, cols, AGRI).tolist() == t[rows, cols].tolist()


def test_correct_keeps_the_grade_where_there_is_no_class():
    rng = np.random.default_rng(1)
    grades = rng.integers(0, 6, (30, 40)).astype(np.uint8)
    classes = rng.integers(0, 6, (30, 40)).astype(np.uint8)
    expected = np.where(classes > 0, rules.matrix(grades, classes, AGRI), grades)
    assert rules.correct(grades, classes, AGRI).tolist() == expected.tolist()


@settings(max_examples=80, deadline=None)
@given(st.sampled_from([np.uint8, np.uint16, np.int16, np.int64]),
       st.sampled_from([np.uint8, np.bool_, np.float32]), st.integers(1, 300),
       st.integers(0, 2**32 - 1), st.booleans())
def test_take_is_numpys_gather(idx_type, table_type, size, seed, view):
    rng = np.random.default_rng(seed)
    table = rng.integers(0, 200, size).astype(table_type)
    idx = rng.integers(0, size, (7, 9)).astype(idx_type)
    if view:
        idx = idx[:, ::2]  # not contiguous: numpy's gather
    got = rules.take(table, idx)
    assert got.dtype == table.dtype and got.shape == idx.shape
    assert (got == table[idx]).all()


def test_take_refuses_an_index_beyond_the_table_as_numpy_does():
    with pytest.raises(IndexError, match="out of bounds"):
        rules.take(np.arange(3, dtype=np.uint8), np.array([0, 3], np.uint8))
    full = np.arange(256, dtype=np.uint8)[::-1].copy()  # covers every byte: nothing checked
    assert rules.take(full, np.array([0, 255], np.uint8)).tolist() == [255, 0]


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1), st.booleans())
def test_correct_by_label_is_correct_of_the_labels_classes(seed, view):
    rng = np.random.default_rng(seed)
    table = rng.integers(1, 6, (5, 3)).tolist()
    grades = rng.integers(0, 6, (8, 10)).astype(np.uint8)
    labels = rng.integers(0, 12, (8, 10)).astype(np.int32)
    label_class = rng.integers(0, 4, 12).astype(np.uint8)
    if view:
        grades, labels = grades[:, ::2], labels[:, ::2]  # numpy's gathers
    want = rules.correct(grades, label_class[labels], table)
    assert rules.correct_by_label(grades, labels, label_class, table).tolist() == want.tolist()
