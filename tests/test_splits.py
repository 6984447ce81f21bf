"""Splits: properties on generated data, leakage guards, and the tie statistics of the real datasets."""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import assume, given, settings, strategies as st

from movierec_nb.data import load_movielens, synthetic_frames
from movierec_nb.splits import (Candidates, LeakageError, LeaveOneOut, NegativeSampler, TemporalRatio, binarize,
                                check_candidates, check_split, sample_candidates, split, training_pairs)


@st.composite
def small_ratings(draw):
    n_users, n_items = draw(st.integers(2, 15)), draw(st.integers(30, 200))
    rows = draw(st.lists(st.tuples(st.integers(1, n_users), st.integers(1, n_items), st.integers(0, 5)),
                         min_size=2 * n_users, max_size=300, unique_by=lambda r: (r[0], r[1])))
    df = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])
    return df.assign(rating=np.float32(1.0), user_id=df.user_id.astype("int32"), item_id=df.item_id.astype("int32"))


@settings(max_examples=80, deadline=None)
@given(small_ratings(), st.sampled_from(["first-in-file", "last-in-file", "random"]))
def test_leave_one_out_properties(df, tie_break):
    s = split(df, LeaveOneOut(tie_break=tie_break))
    assert len(s.train) + len(s.valid) + len(s.test) == len(df)
    latest = df.groupby("user_id").timestamp.max()
    assert (s.test.timestamp.to_numpy() == latest.loc[s.test.user_id].to_numpy()).all()
    counts = df.user_id.value_counts()
    assert set(s.test.user_id) == set(counts[counts >= 2].index)
    check_split(s)


@settings(max_examples=40, deadline=None)
@given(small_ratings(), st.integers(0, 2**31))
def test_negatives_and_candidates_never_positives(df, seed):
    s = split(df, LeaveOneOut(validation=False))
    pos = s.positives().toarray()
    free = s.n_items - pos.sum(1)
    assume(free.min() >= 1 and len(s.test) > 0)          # someone must have a non-interacted item
    u, i, y = training_pairs(s, k=3, seed=seed)
    assert not pos[u[y == 0], i[y == 0]].any()
    n = int(min(20, free[s.test.u].min()))                  # as many candidates as every test user allows
    c = sample_candidates(s, n=n, seed=seed)
    assert not pos[np.repeat(c.users, n), c.items[:, 1:].ravel()].any()
    assert all(len(set(row)) == n + 1 for row in c.items)


def test_sampler_is_uniform_over_non_positives():
    rng = np.random.default_rng(0)
    pos = (rng.random((3, 50)) < 0.4)
    import scipy.sparse as sp
    draws = NegativeSampler.from_positives(sp.csr_matrix(pos)).sample(np.repeat([0, 1, 2], 20_000), 1, rng).ravel()
    for u in range(3):
        d = draws[u * 20_000:(u + 1) * 20_000]
        assert set(np.unique(d)) == set(np.flatnonzero(~pos[u]))
        freq = np.bincount(d, minlength=50)[~pos[u]] / len(d)
        assert np.abs(freq - 1 / (~pos[u]).sum()).max() < 0.012


def test_leakage_guards_raise():
    df = synthetic_frames(30, 300, 900, seed=1)["ratings"]
    s = split(binarize(df), LeaveOneOut())
    s.train = pd.concat([s.train, s.test.iloc[:1]])
    with pytest.raises(LeakageError, match="1 test pair\\(s\\) also in training"):
        check_split(s)
    s = split(binarize(df), LeaveOneOut())
    c = sample_candidates(s, 20)
    bad = c.items.copy(); bad[0, 5] = s.train.i[s.train.u == c.users[0]].iloc[0]
    with pytest.raises(LeakageError, match="positives of their user"):
        check_candidates(s, Candidates(c.users, bad, "test"))


def test_temporal_global_cut():
    df = synthetic_frames(50, 300, 2000, seed=2)["ratings"]
    s = split(df, TemporalRatio(0.8, validation_frac=0.1))
    assert s.train.timestamp.max() <= s.valid.timestamp.min() and s.valid.timestamp.max() <= s.test.timestamp.min()
    assert len(s.test) == 400 and s.stats["time_cut"] is not None


@pytest.mark.parametrize("name,kw,tied", [("ml-100k", {}, 415), ("ml-1m", {"folder": "ml-1m-partial"}, 1268)])
def test_real_tie_counts(real_root, name, kw, tied):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        d = load_movielens(name, path=real_root / kw["folder"], verify=False) if kw else load_movielens(name, real_root)
    a = split(binarize(d.ratings), LeaveOneOut())
    b = split(binarize(d.ratings), LeaveOneOut(tie_break="last-in-file"))
    assert a.stats["users_tied_at_latest"] == tied
    differ = (a.test.sort_values("u").item_id.to_numpy() != b.test.sort_values("u").item_id.to_numpy()).sum()
    assert differ == tied   # the tie-break decides the test item of exactly the tied users
