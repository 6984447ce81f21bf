"""Splits: properties on generated data, leakage guards, and the tie statistics of the real datasets."""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import assume, given, settings, strategies as st

from movierec_nb.data import load_movielens, synthetic_frames
from movierec_nb.splits import PAD as PAD_
from movierec_nb.splits import (Candidates, LeakageError, LeaveOneOut, NegativeSampler, TemporalRatio, binarize,
                                candidates_from_ids as candidates_from_ids_, check_candidates, check_split, sample_candidates,
                                split, training_pairs)


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
    "Users with two or more ratings at their latest timestamp: counted here with a plain groupby, then by the split."
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        d = load_movielens(name, path=real_root / kw["folder"]) if kw else load_movielens(name, real_root)
    r = d.ratings
    at_latest = r[r.timestamp == r.groupby("user_id").timestamp.transform("max")].groupby("user_id").size()
    assert int((at_latest >= 2).sum()) == tied          # a fact about the data, independent of split()
    a = split(binarize(d.ratings), LeaveOneOut())
    b = split(binarize(d.ratings), LeaveOneOut(tie_break="last-in-file"))
    assert a.stats["users_tied_at_latest"] == tied
    differ = (a.test.sort_values("u").item_id.to_numpy() != b.test.sort_values("u").item_id.to_numpy()).sum()
    assert differ == tied   # the tie-break decides the test item of exactly the tied users


def test_official_u1_fold_reproduces_surprise_svd(real_root):
    "Surprise's SVD on ml-100k's official u1 fold: our evaluation of the fitted model equals Surprise's own RMSE, and so does Surprise run from the files."
    import surprise
    from surprise.model_selection import PredefinedKFold
    from movierec_nb.baselines import SurpriseModel
    from movierec_nb.metrics import RatingError, evaluate
    from movierec_nb.splits import load_official_folds
    folds = load_official_folds("ml-100k", real_root, download=False)
    assert list(folds) == ["u1", "u2", "u3", "u4", "u5", "ua", "ub"]
    s = folds["u1"]
    assert (len(s.train), len(s.test), s.n_items) == (80_000, 20_000, 1682)
    m = SurpriseModel("SVD", seed=0).fit(s)
    ours = evaluate(m, s, RatingError())["RMSE"]
    same_model = surprise.accuracy.rmse(m.algo.test(list(zip(s.test.u, s.test.i, s.test.rating))), verbose=False)
    assert ours == pytest.approx(same_model, abs=1e-12)
    data = surprise.Dataset.load_from_folds([tuple(str(real_root / "ml-100k" / f"u1.{p}") for p in ("base", "test"))], surprise.Reader("ml-100k"))
    trainset, testset = next(PredefinedKFold().split(data))
    from_files = surprise.accuracy.rmse(surprise.SVD(random_state=0).fit(trainset).test(testset), verbose=False)
    assert ours == pytest.approx(from_files, abs=1e-9)        # same inner ids (file order), same seed: the same model
    assert 0.9 < ours < 1.0


def test_knn_with_msd_agrees_with_surprise_on_real_ml100k(real_root):
    "Ties at the k-th MSD similarity are broken in Surprise's order, so every prediction agrees (it once differed for 8-12%)."
    from movierec_nb.baselines import SurpriseModel
    from movierec_nb.splits import load_official_folds
    s = load_official_folds("ml-100k", real_root, download=False)["ua"]
    pairs = s.test.sample(2000, random_state=0)
    for algo, ub in (("KNNBasic", True), ("KNNWithMeans", False)):
        m = SurpriseModel(algo, sim_options={"name": "msd", "user_based": ub}).fit(s)
        ours = m.score(pairs.u.to_numpy(), pairs.i.to_numpy()[:, None])[:, 0]
        theirs = np.array([m.algo.predict(u, i).est for u, i in zip(pairs.u, pairs.i)])
        assert np.abs(ours - theirs).max() < 1e-9, algo


def test_published_candidates_with_repeats_under_each_policy(tmp_path):
    "A synthetic NCF-format candidate file with test items among their negatives: raise, drop, warn; HR/NDCG/MRR by brute force."
    from movierec_nb.metrics import SampledCandidates, evaluate
    from movierec_nb.splits import PAD, read_ncf_files, write_ncf_files
    s = split(binarize(synthetic_frames(80, 400, 3000, fmt="ml-100k", seed=3, scale=(1, 5, 1))["ratings"]), LeaveOneOut(validation=False))
    c = sample_candidates(s, 99, seed=1)
    items = c.items.copy(); items[[0, 5, 9], 3] = items[[0, 5, 9], 0]
    prefix = write_ncf_files(tmp_path / "syn", s, Candidates(c.users, items, "with repeats"))
    with pytest.raises(LeakageError, match="3 candidate row\\(s\\) repeat an item.*on_duplicate='drop'"):
        read_ncf_files(prefix)
    with pytest.warns(UserWarning, match="3 of 80 candidate row\\(s\\) list an item twice"):
        s_w, c_w = read_ncf_files(prefix, on_duplicate="warn")
    s_d, c_d = read_ncf_files(prefix, on_duplicate="drop")
    assert np.array_equal(c_w.items, c_d.items) and (c_d.items == PAD).sum() == 3

    class Hashed:
        def score(self, users, items): return ((users[:, None] * 31 + items * 17) % 23).astype(float)
    got = evaluate(Hashed(), s_d, SampledCandidates(99, (5, 10)), candidates=c_d)
    ranks = []
    for u, row in zip(c_d.users, c_d.items):
        live = row[row != PAD]
        sc = Hashed().score(np.array([u]), live[None, :])[0]
        ranks.append(sum(sc[1:] >= sc[0]))
    ranks = np.array(ranks)
    for k in (5, 10):
        assert got[f"HR@{k}"] == pytest.approx((ranks < k).mean(), abs=1e-12)
        assert got[f"NDCG@{k}"] == pytest.approx(np.where(ranks < k, 1 / np.log2(ranks + 2), 0).mean(), abs=1e-12)
    assert got["MRR"] == pytest.approx((1 / (ranks + 1)).mean(), abs=1e-12)


@pytest.mark.parametrize("bad,match", [
    (lambda s, c: Candidates(c.users, np.c_[np.full(len(c.users), PAD_), c.items[:, 1:]], "x"), "column 0 \\(the held-out item\\) cannot be padding"),
    (lambda s, c: candidates_from_ids_(s, s.idmap.user_ids(c.users), s.idmap.item_ids(c.items), on_duplicate="keep"), "on_duplicate must be one of raise, drop, warn"),
])
def test_candidate_edges_are_loud(bad, match):
    s = split(binarize(synthetic_frames(40, 300, 1500, fmt="ml-100k", seed=0, scale=(1, 5, 1))["ratings"]), LeaveOneOut())
    with pytest.raises(ValueError, match=match):
        bad(s, sample_candidates(s, 20))


def test_authors_split_on_the_real_files(real_root, ncf_dir):
    "He et al.'s files on ml-1m-partial: the counts PROVENANCE.md gives (2,999 users, 3,706 items, 91 never rated here, 77 repeats)."
    from movierec_nb.data import load_movielens
    from movierec_nb.splits import PAD, authors_split
    data = load_movielens("ml-1m", real_root, path="ml-1m-partial", download=False)
    a = authors_split(data.ratings, ncf_dir)
    assert [f["status"] for f in a.files] == ["verified", "verified"]
    assert a.users == "the 2,999 users present (of the files' 6,040)"
    assert (a.split.n_users, a.split.n_items, len(a.split.test)) == (2999, 3706, 2999)
    assert len(a.split.train) == len(data.ratings) - 2999
    assert len(a.unrated) == 91 and a.rated_only().n_items == 3615
    assert int((a.candidates.items == PAD).sum()) == 77          # test items listed again among their own negatives, scored once
    assert a.movie_ids[0] == 1193 and (a.movie_ids[3615:] == -1).all()   # the first row of ratings.dat is MovieID 1193


def test_authors_folder_downloads_with_checksums(tmp_path, monkeypatch, ncf_dir):
    "With no folder given, the files are fetched into <data root>/ncf, each against its SHA-256; a bad copy stops the run."
    import shutil

    import pooch

    from movierec_nb.data import ChecksumError
    from movierec_nb.splits import AUTHORS_FILES, AUTHORS_URL, authors_folder
    monkeypatch.delenv("MOVIEREC_NCF_DIR", raising=False)
    asked = []

    def fake_retrieve(url, known_hash, fname, path, progressbar):
        asked.append(url)
        shutil.copy(ncf_dir / fname, Path(path) / fname)
        if known_hash != "sha256:" + pooch.file_hash(str(Path(path) / fname)): raise ValueError("hash mismatch")
        return str(Path(path) / fname)

    monkeypatch.setattr(pooch, "retrieve", fake_retrieve)
    got = authors_folder(data_dir=tmp_path)
    assert got == tmp_path / "ncf" and asked == [AUTHORS_URL + f for f in AUTHORS_FILES["ml-1m"]]
    assert authors_folder(data_dir=tmp_path) == got and len(asked) == 2       # present now: nothing fetched again
    monkeypatch.setitem(AUTHORS_FILES, "ml-1m", {"ml-1m.test.rating": "0" * 64})
    with pytest.raises(ChecksumError, match="ml-1m.test.rating failed its checksum"):
        authors_folder(data_dir=tmp_path / "other")
