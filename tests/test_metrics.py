"""Metrics: the vectorised code agrees with the brute-force references on generated inputs full of ties."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra.numpy import arrays

from movierec_nb.metrics import (hit_ratio, ndcg, per_user_threshold_metrics, ranking_metrics, reference_metrics,
                                 reference_precision_recall_at_k, relevant_ranks)


@st.composite
def ranking_case(draw):
    n, c = draw(st.integers(1, 12)), draw(st.integers(2, 15))
    scores = draw(arrays(np.float64, (n, c), elements=st.integers(0, 3).map(float)))   # small range: many ties
    relevant = draw(arrays(bool, (n, c)))
    relevant[np.arange(n), draw(arrays(np.int64, n, elements=st.integers(0, c - 1)))] = True
    exclude = draw(arrays(bool, (n, c))) & ~relevant
    k = draw(st.integers(1, c))
    return scores, relevant, exclude, k


@settings(max_examples=300, deadline=None)
@given(ranking_case())
def test_fast_metrics_match_reference(case):
    scores, relevant, exclude, k = case
    fast = ranking_metrics(*relevant_ranks(scores, relevant, exclude), n_rows=len(scores), n_candidates=scores.shape[1], ks=(k,))
    slow = reference_metrics(scores, relevant, exclude, k=k)
    for key, v in slow.items():
        assert fast[key] == pytest.approx(v, abs=1e-12), key


@settings(max_examples=200, deadline=None)
@given(ranking_case(), st.integers(0, 1000))
def test_optimistic_and_pessimistic_ties_bound_the_random_rank(case, seed):
    scores, relevant, exclude, _ = case          # one held-out item per row (the sampled protocol's case)
    relevant = relevant & (np.cumsum(relevant, 1) == 1); exclude = exclude & ~relevant
    rows, lo = relevant_ranks(scores, relevant, exclude, ties="optimistic")
    _, hi = relevant_ranks(scores, relevant, exclude, ties="pessimistic")
    _, mid = relevant_ranks(scores, relevant, exclude, ties="random", seed=seed)
    assert (lo <= mid).all() and (mid <= hi).all()
    distinct = np.array([len(set(r[~e])) == (~e).sum() for r, e in zip(scores, exclude)])   # rows without ties: one rank
    assert (lo[distinct[rows]] == hi[distinct[rows]]).all()


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 30), st.integers(2, 120), st.floats(-5, 5))
def test_constant_scores_never_hit(n, c, value):
    scores = np.full((n, c), value)
    assert hit_ratio(scores, k=min(10, c - 1) or 1) == 0.0 if c > 1 else True
    assert ndcg(scores, k=c - 1 if c > 1 else 1) == 0.0


@st.composite
def rating_rows(draw):
    n = draw(st.integers(1, 40))
    users = draw(st.lists(st.integers(0, 5), min_size=n, max_size=n))
    true = draw(st.lists(st.sampled_from([1.0, 2.0, 3.0, 3.5, 4.0, 5.0]), min_size=n, max_size=n))
    est = draw(st.lists(st.sampled_from([1.0, 2.5, 3.5, 4.0, 4.5]), min_size=n, max_size=n))
    return list(zip(users, true, est)), draw(st.integers(1, 6))


@settings(max_examples=200, deadline=None)
@given(rating_rows())
def test_per_user_threshold_matches_surprise_faq(case):
    rows, k = case
    u, t, e = map(np.array, zip(*rows))
    got = per_user_threshold_metrics(u, t, e, k=k, threshold=3.5)
    want = reference_precision_recall_at_k(rows, k, 3.5)
    assert (got[f"P@{k}"], got[f"R@{k}"]) == pytest.approx(want, abs=1e-12)


def test_random_ties_are_seeded_and_unbiased():
    scores = np.ones((5000, 100))
    rel = np.zeros(scores.shape, bool); rel[:, 0] = True
    a = relevant_ranks(scores, rel, ties="random", seed=3)[1]
    assert np.array_equal(a, relevant_ranks(scores, rel, ties="random", seed=3)[1])
    assert a.mean() == pytest.approx(49.5, abs=1.5)


@pytest.mark.parametrize("bad,match", [
    (lambda: relevant_ranks(np.zeros((0, 3)), np.zeros((0, 3), bool)), "empty test set"),
    (lambda: relevant_ranks(np.ones((2, 3)), np.ones((2, 3), bool), np.ones((2, 3), bool)), "both relevant and excluded"),
    (lambda: relevant_ranks(np.ones((2, 3)), np.ones((2, 3), bool), ties="best"), "ties must be one of pessimistic, optimistic, random"),
    (lambda: ranking_metrics(np.array([0]), np.array([0]), n_rows=2, n_candidates=5), "1 row\\(s\\) have no relevant item"),
    (lambda: ranking_metrics(np.array([0]), np.array([0]), n_rows=1, n_candidates=5, ks=(20,)), "K=20 must be between 1 and the number of candidates \\(5\\)"),
    (lambda: hit_ratio(np.ones(5), k=2), "scores must be 2-D"),
    (lambda: ndcg(np.ones(5), k=2), "scores must be 2-D"),
    (lambda: per_user_threshold_metrics([1], [3.0], [3.0], gain="dcg"), "gain must be"),
])
def test_bad_inputs_are_refused(bad, match):
    with pytest.raises(ValueError, match=match):
        bad()


def test_the_candidate_count_is_required():
    "Without it a K above the candidates would give HR@K = 1 silently."
    with pytest.raises(TypeError, match="n_candidates"):
        ranking_metrics(np.array([0]), np.array([0]), n_rows=1, ks=(20,))
