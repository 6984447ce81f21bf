"""Baselines: the chapter on real ml-100k (metrics read back from metrics.json), unseen users/items, bad names."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from movierec_nb import reproduce as R
from movierec_nb.baselines import (EASE, ImplicitMF, NeighborhoodCF, Popularity, RandomScores, SurpriseModel, make_model)
from movierec_nb.data import synthetic_frames
from movierec_nb.metrics import RatingError, SampledCandidates, evaluate
from movierec_nb.splits import LeaveOneOut, TemporalRatio, split


@pytest.fixture(scope="module")
def temporal():
    return split(synthetic_frames(150, 1500, 5000, fmt="ml-100k", seed=4, scale=(1, 5, 1))["ratings"], TemporalRatio(0.8))


def test_chapter_on_real_ml100k(real_root, tmp_path):
    run = R.Run("baselines", "05_baselines.ipynb", "ml-100k", dict(datasets=["ml-100k"], slow_folds=1))
    R.execute(run, "quick", tmp_path, data_root=real_root, progress=False)
    m = json.loads((tmp_path / "baselines" / "ml-100k-quick.metrics.json").read_text())
    rating = pd.DataFrame(m["rating"]["ml-100k"]).set_index("model")
    ranking = pd.DataFrame(m["ranking"]["ml-100k"]).set_index("model")
    # published Surprise 5-fold figures on ml-100k: SVD 0.934, NormalPredictor 1.514, BaselineOnly 0.944
    assert rating.loc["SVD", "RMSE"] == pytest.approx(0.936, abs=0.015)
    assert rating.loc["NormalPredictor", "RMSE"] == pytest.approx(1.517, abs=0.03)
    assert rating.loc["BaselineOnly", "RMSE"] == pytest.approx(0.944, abs=0.01)
    assert (rating.folds.drop("SVD++") == 5).all() and rating.loc["SVD++", "folds"] == 1
    assert ranking.loc["random", "sampled HR@10"] == pytest.approx(0.10, abs=0.04)
    for strong in ("ease", "ials", "itemknn-cosine", "dot-mf"):
        assert ranking.loc[strong, "sampled HR@10"] > ranking.loc["popularity", "sampled HR@10"] + 0.1, strong
        assert ranking.loc[strong, "full HR@10"] > ranking.loc["popularity", "full HR@10"], strong
    assert m["splits"]["ml-100k"]["split"]["users_tied_at_latest"] == 415
    assert m["manifest"]["data"][0]["verified"] is True


def test_unseen_users_and_items_are_defined_and_counted(temporal):
    s = temporal
    assert s.stats["test_rows_unseen_user"] > 0 and s.stats["test_rows_unseen_item"] > 0
    res = evaluate(SurpriseModel("SVD").fit(s), s, RatingError())
    assert res["rows_unseen_user"] == s.stats["test_rows_unseen_user"]
    assert res["heldout_unseen_item"] == s.stats["test_rows_unseen_item"]
    cold_u = s.test.u[~s.test.u.isin(s.train.u)].to_numpy()[:5]
    any_item = np.full((len(cold_u), 1), s.train.i.iloc[0])
    for model in (SurpriseModel("KNNWithMeans"), SurpriseModel("NMF"), NeighborhoodCF("user", "pearson")):
        model.fit(s)   # unknown user: Surprise's default prediction, the global mean
        assert np.allclose(model.score(cold_u, any_item), s.train.rating.mean())
    cold_i = s.test.i[~s.test.i.isin(s.train.i)].to_numpy()[:3]
    scores = EASE(50).fit(s).score(np.zeros(len(cold_i), int), cold_i[:, None])
    assert np.isneginf(scores).all()   # a ranking model can never rank an item it has never seen


def test_random_scores_do_not_depend_on_batching(temporal):
    m = RandomScores(seed=3).fit(temporal)
    items = np.arange(50)[None, :].repeat(4, 0)
    whole = m.score(np.arange(4), items)
    parts = np.vstack([m.score(np.array([u]), items[:1]) for u in range(4)])
    seen = np.isfinite(whole)                      # unseen items score -inf, as for every ranking model
    assert np.array_equal(whole, parts) and (whole[seen] >= 0).all() and (whole[seen] < 1).all()


def test_bpr_and_als_are_deterministic(temporal):
    for method in ("als", "bpr"):
        a = ImplicitMF(method, factors=8, iterations=5, seed=1).fit(temporal)
        b = ImplicitMF(method, factors=8, iterations=5, seed=1).fit(temporal)
        assert np.array_equal(a.V, b.V), method


@pytest.mark.parametrize("bad,match", [
    (lambda: make_model("deep-magic"), "unknown model 'deep-magic'; valid: popularity"),
    (lambda: NeighborhoodCF("user", "euclid"), "valid: cosine, pearson, spearman"),
    (lambda: NeighborhoodCF("group"), "kind must be 'user' or 'item'"),
    (lambda: SurpriseModel("SVDplus"), "unknown Surprise algorithm"),
    (lambda: EASE(0), "lam must be positive"),
    (lambda: ImplicitMF("sgd"), "method must be 'als' or 'bpr'"),
])
def test_bad_names_list_valid_ones(bad, match):
    with pytest.raises(ValueError, match=match):
        bad()


def test_score_validates_shapes_and_indices(temporal):
    m = Popularity().fit(temporal)
    with pytest.raises(ValueError, match="users must be \\(n,\\) and items \\(n, C\\)"):
        m.score(np.arange(3), np.arange(3))
    with pytest.raises(IndexError, match="outside the fitted split"):
        m.score(np.array([0]), np.array([[temporal.n_items]]))
