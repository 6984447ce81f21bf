"""Reference solutions of the chapters' exercises, run as tests: each computes the answer its own way and checks it against
what the chapter's tools say."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr
from pathlib import Path

from movierec_nb.baselines import make_model
from movierec_nb.data import load_movielens
from movierec_nb.metrics import FullCatalogue, SampledCandidates, evaluate, user_values
from movierec_nb.splits import LeaveOneOut, binarize, split


@pytest.fixture(scope="module")
def start(real_root):
    "What `00_start_here` builds: ml-100k, its leave-one-out split (first-in-file, no validation), popularity on it."
    ratings = load_movielens("ml-100k", real_root, download=False, progress=False).ratings
    s = split(binarize(ratings), LeaveOneOut(validation=False, tie_break="first-in-file"))
    return ratings, s, make_model("popularity").fit(s)


def test_start_here_exercise_1_ties_counted_with_a_groupby(start):
    "Users with two or more ratings at their latest second, counted from the ratings alone."
    ratings, s, _ = start
    latest = ratings.groupby("user_id").timestamp.transform("max")
    tied = int((ratings[ratings.timestamp == latest].groupby("user_id").size() >= 2).sum())
    assert tied == s.stats["users_tied_at_latest"] == 415


def test_start_here_exercise_2_fewer_competitors_raise_hr(start):
    "49 sampled competitors instead of 99: fewer movies to beat, so HR@10 rises (for any model better than random)."
    _, s, pop = start
    hr = {n: evaluate(pop, s, SampledCandidates(n, (10,), seed=0))["HR@10"] for n in (49, 99)}
    assert hr[49] > hr[99]
    # a random ranker would get 10/50 and 10/100: popularity is far above both
    assert hr[49] > 0.2 and hr[99] > 0.1


def test_start_here_exercise_3_sampled_and_full_ranks_agree_in_order(start):
    "The held-out movie's rank among 1 + 99 and in the catalogue: strongly rank-correlated, the sampled rank far smaller."
    _, s, pop = start
    r_s = 1 / user_values(pop, s, SampledCandidates(99, (10,), seed=0)).MRR
    r_f = (1 / user_values(pop, s, FullCatalogue((10,))).MRR).reindex(r_s.index)
    rho = spearmanr(r_s, r_f).statistic
    assert rho > 0.8 and (r_f >= r_s - 1e-9).all() and np.median(r_f / r_s) > 5


# ---- 01_data ------------------------------------------------------------------------------------------------------------

def test_data_exercise_1_density(real_root):
    "ratings / (users × movies rated): ml-100k is about 6.3% full, ml-latest-small under 2%."
    def density(name):
        r = load_movielens(name, real_root, download=False, progress=False).ratings
        return len(r) / (r.user_id.nunique() * r.item_id.nunique())
    d100k, dsmall = density("ml-100k"), density("ml-latest-small")
    assert d100k == pytest.approx(100_000 / (943 * 1682)) and dsmall == pytest.approx(100_836 / (610 * 9724))
    assert d100k > 3 * dsmall


def test_data_exercise_2_one_changed_byte_is_caught(real_root, tmp_path):
    "A copy of ml-100k with one byte of u.data changed: refused with the file named; loaded with verify=False, recorded."
    import shutil
    import warnings
    from movierec_nb.data import ChecksumError
    folder = shutil.copytree(real_root / "ml-100k", tmp_path / "ml-100k")
    raw = bytearray((folder / "u.data").read_bytes())
    raw[raw.index(b"\t3\t")+1] = ord("4")            # one rating 3 -> 4: still a valid file
    (folder / "u.data").write_bytes(bytes(raw))
    with pytest.raises(ChecksumError, match="u.data"):
        load_movielens("ml-100k", path=folder, download=False, cache=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = load_movielens("ml-100k", path=folder, download=False, cache=False, verify=False)
    assert not data.source.verified and len(data.ratings) == 100_000
    assert [f["file"] for f in data.source.files if f["status"] != "verified"] == ["u.data"]


def test_data_exercise_3_synthetic_folder_reads_back(tmp_path):
    "write_synthetic in ml-1m's format, read back by the official loader: the sizes asked for, verified by its own record."
    from movierec_nb.data import write_synthetic
    folder = write_synthetic(tmp_path / "ml-1m", "ml-1m", n_users=50, n_items=80, n_ratings=1_000, seed=3)
    assert (folder / "ratings.dat").read_text().splitlines()[0].count("::") == 3
    data = load_movielens("ml-1m", path=folder, download=False, cache=False)
    assert (len(data.ratings), data.ratings.user_id.nunique()) == (1_000, 50) and data.source.verified


# ---- 02_splits ----------------------------------------------------------------------------------------------------------

def test_splits_exercise_1_no_leak_checked_by_a_merge(start):
    "No (user, movie) pair is both trained on and held out, and no held-out movie is older than its user's training."
    _, s, _ = start
    assert len(s.train.merge(s.test, on=["u", "i"])) == 0
    last_train = s.train.groupby("u").timestamp.max()
    assert (s.test.set_index("u").timestamp >= last_train.reindex(s.test.u).to_numpy()).all()


def test_splits_exercise_2_a_global_cut_leaves_users_without_training(start):
    "TemporalRatio(0.8) cuts at one moment for all: users who arrive after it are tested with no training; per user, none."
    from movierec_nb.splits import TemporalRatio
    ratings = start[0]
    cut = split(ratings, TemporalRatio(0.8))
    cold = set(cut.test.u) - set(cut.train.u)
    ts = ratings.timestamp.sort_values(kind="stable").to_numpy()
    late = ratings.groupby("user_id").timestamp.min() >= ts[int(0.8 * len(ts))]   # users whose first rating is after the cut
    assert len(cold) == int(late.sum()) > 0
    per_user = split(ratings, TemporalRatio(0.8, per_user=True))
    assert set(per_user.test.u) <= set(per_user.train.u)


def test_splits_exercise_3_negatives_checked_with_pandas(start):
    "99 sampled candidates per user: 100 distinct movies a row, none of the 99 rated by the user in any part."
    from movierec_nb.splits import sample_candidates
    _, s, _ = start
    c = sample_candidates(s, 99, seed=0)
    assert c.items.shape == (s.n_users, 100) and all(len(set(row)) == 100 for row in c.items)
    neg = pd.DataFrame({"u": np.repeat(c.users, 99), "i": c.items[:, 1:].ravel()})
    rated = pd.concat([s.train, s.valid, s.test])[["u", "i"]]
    assert len(neg.merge(rated, on=["u", "i"])) == 0


# ---- 03_metrics ---------------------------------------------------------------------------------------------------------

def test_metrics_exercise_1_by_hand():
    "Held-out movie at rank 3 (0-based 2) and at rank 11: HR@10 1 and 0, NDCG@10 1/log2(4) = 0.5 and 0, MRR 1/3 and 1/11."
    from movierec_nb.metrics import per_row_metrics
    per = per_row_metrics(np.array([0, 1]), np.array([2, 10]), n_rows=2, n_candidates=100)
    assert per["HR@10"].tolist() == [1.0, 0.0] and per["NDCG@10"].tolist() == [0.5, 0.0]
    assert per["MRR"] == pytest.approx([1 / 3, 1 / 11])


def test_metrics_exercise_2_hr_grows_with_k_and_bounds_ndcg(start):
    "Popularity on ml-100k, sampled: HR@K never falls as K grows, and NDCG@K never exceeds HR@K."
    _, s, pop = start
    m = evaluate(pop, s, SampledCandidates(99, (1, 5, 10, 20), seed=0))
    hr = [m[f"HR@{k}"] for k in (1, 5, 10, 20)]
    assert hr == sorted(hr) and hr[0] < hr[-1]
    assert all(m[f"NDCG@{k}"] <= m[f"HR@{k}"] + 1e-12 for k in (1, 5, 10, 20)) and m["NDCG@1"] == pytest.approx(m["HR@1"])


def test_metrics_exercise_3_full_ranking_by_brute_force(start):
    "Full-catalogue HR@10 of popularity from a dense score matrix: rank = unseen movies scoring at least the held-out one."
    _, s, pop = start
    scores = pop.score(np.arange(s.n_users), np.tile(np.arange(s.n_items), (s.n_users, 1)))     # users × every movie
    seen = s.positives(("train",)).toarray()
    t = s.test.sort_values("u")
    held = scores[t.u, t.i]
    others = np.where(seen, -np.inf, scores)
    others[t.u, t.i] = -np.inf                                            # the held-out movie does not compete with itself
    rank = (others >= held[:, None]).sum(1)                               # ties count against it (pessimistic)
    assert (rank < 10).mean() == pytest.approx(evaluate(pop, s, FullCatalogue((10,)))["HR@10"])


# ---- 03a_stats ----------------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def hits(start):
    "Per-user sampled HR@10 of popularity and EASE on the same users and candidates."
    _, s, pop = start
    ease = make_model("ease").fit(s)
    return {n: user_values(m, s, SampledCandidates(99, (10,), seed=0))["HR@10"].to_numpy() for n, m in (("pop", pop), ("ease", ease))}


def test_stats_exercise_1_bootstrap_agrees_with_the_normal_approximation(hits):
    "For a mean of 943 0/1 values the bootstrap interval is close to p ± 1.96 √(p(1−p)/n)."
    from movierec_nb.stats import bootstrap_ci
    x = hits["pop"]
    p, n = x.mean(), len(x)
    half = 1.96 * np.sqrt(p * (1 - p) / n)
    ci = bootstrap_ci(x).iloc[0]
    assert ci["low"] == pytest.approx(p - half, abs=0.006) and ci["high"] == pytest.approx(p + half, abs=0.006)


def test_stats_exercise_2_mcnemar_from_the_discordant_pairs(hits):
    "Only the users where exactly one model hits carry information: a binomial test on them is the exact McNemar test."
    from scipy.stats import binomtest
    from movierec_nb.stats import mcnemar_exact
    a, b = hits["ease"].astype(bool), hits["pop"].astype(bool)
    only_a, only_b = int((a & ~b).sum()), int((b & ~a).sum())
    p = binomtest(only_a, only_a + only_b, 0.5).pvalue
    assert mcnemar_exact(a, b) == (only_a, only_b, pytest.approx(p)) and only_a > only_b and p < 0.001


def test_stats_exercise_3_holm_by_hand():
    "Sorted p × (m − rank), made non-decreasing, capped at 1, returned in the input order."
    from movierec_nb.stats import holm
    assert holm([0.01, 0.04, 0.03, 0.2]) == pytest.approx([0.04, 0.09, 0.09, 0.2])


# ---- 04_train -----------------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def small_loo():
    "A synthetic leave-one-out split with a validation item per user (the training chapter's own example data)."
    from movierec_nb.data import synthetic_frames
    return split(binarize(synthetic_frames(300, 500, 15_000, fmt="ml-100k", seed=0, scale=(1, 5, 1))["ratings"]), LeaveOneOut())


def test_train_exercise_1_an_epoch_of_pairs(small_loo):
    "k negatives per positive: (1 + k) × |train| rows, labels 1:k, the same positives and fresh negatives each epoch."
    from movierec_nb.train import ImplicitPairs
    data = ImplicitPairs(small_loo, k=4, seed=0)
    (u0, i0, y0), (u1, i1, y1) = data.epoch(0), data.epoch(1)
    n = len(small_loo.train)
    assert len(y0) == 5 * n and int(y0.sum()) == n
    pos = lambda u, i, y: sorted(zip(u[y == 1].tolist(), i[y == 1].tolist()))
    assert pos(u0, i0, y0) == pos(u1, i1, y1) == sorted(zip(small_loo.train.u, small_loo.train.i))
    assert not np.array_equal(i0[y0 == 0].numpy(), i1[y1 == 0].numpy())


def test_train_exercise_2_early_stopping_keeps_the_best_epoch(small_loo):
    "patience=2 on validation HR@10: after fit, the network scores the best epoch's value, not the last one's."
    import torch
    from movierec_nb.models.zeng_embedding import ZengEmbedding
    from movierec_nb.train import ImplicitPairs, Trainer, TrainConfig, ranking_validator
    torch.manual_seed(0)
    val = ranking_validator(small_loo)
    t = Trainer(ZengEmbedding(small_loo.n_users, small_loo.n_items),
                TrainConfig(loss="bce", lr=3e-3, batch_size=512, epochs=25, monitor="val_HR@10", mode="max", patience=2, seed=0, progress=False),
                ImplicitPairs(small_loo, 4, 0), [val])
    h = t.fit()
    assert t.stopped_early == (len(h) < 25)
    assert val(t.model)["val_HR@10"] == pytest.approx(h["val_HR@10"].max())


# ---- 05_baselines -------------------------------------------------------------------------------------------------------

def test_baselines_exercise_1_ease_regularisation(start):
    "EASE's λ on ml-100k: almost none over-fits, a huge one flattens towards popularity; the middle is best (full NDCG@10)."
    _, s, pop = start
    ndcg = {lam: evaluate(make_model("ease", lam=lam).fit(s), s, FullCatalogue((10,)))["NDCG@10"] for lam in (1.0, 300.0, 1e6)}
    assert ndcg[300.0] > max(ndcg[1.0], ndcg[1e6])
    assert abs(ndcg[1e6] - evaluate(pop, s, FullCatalogue((10,)))["NDCG@10"]) < abs(ndcg[300.0] - ndcg[1e6])


def test_baselines_exercise_2_sampling_flatters_both_but_keeps_the_order(start):
    "Sampled HR@10 is several times the full-catalogue HR@10 for popularity and for EASE, and EASE leads under both."
    _, s, pop = start
    ease = make_model("ease").fit(s)
    hr = {(n, p): evaluate(m, s, proto)["HR@10"] for n, m in (("pop", pop), ("ease", ease))
          for p, proto in (("sampled", SampledCandidates(99, (10,), seed=0)), ("full", FullCatalogue((10,))))}
    assert all(hr[(n, "sampled")] > 3 * hr[(n, "full")] for n in ("pop", "ease"))
    assert hr[("ease", "sampled")] > hr[("pop", "sampled")] and hr[("ease", "full")] > hr[("pop", "full")]


def test_every_chapter_with_exercises_has_a_tested_solution_per_exercise():
    "A chapter that opens with goals, prerequisites and run time ends with exercises, each with a reference solution here."
    import json
    import re
    from pathlib import Path
    here = Path(__file__).read_text()
    chapters = 0
    for nb in sorted((Path(__file__).parents[1] / "nbs").glob("*.ipynb")):
        md = [("".join(c["source"])) for c in json.loads(nb.read_text())["cells"] if c["cell_type"] == "markdown"]
        if not any("**Learning goals.**" in m for m in md): continue
        chapters += 1
        opening = next(m for m in md if "**Learning goals.**" in m)
        assert "**Prerequisites.**" in opening and "**Run time.**" in opening, nb.name
        ex = [m for m in md if m.startswith("## Exercises")]
        assert len(ex) == 1, f"{nb.name}: one Exercises section expected"
        n = len(re.findall(r"^\d+\. \*\*", ex[0], flags=re.M))
        prefix = re.search(r"`(test_\w+_exercise)_\*`", ex[0]).group(1)
        solved = sorted(set(int(k) for k in re.findall(rf"^def {prefix}_(\d+)_", here, flags=re.M)))
        assert solved == list(range(1, n + 1)), (nb.name, n, solved)
    assert chapters >= 7


# ---- 15_ncf_control (from the committed report) -------------------------------------------------------------------------

CONTROL = Path(__file__).parents[1] / "reports" / "ncf-control" / "ml-1m-partial-quick"


@pytest.fixture(scope="module")
def control():
    "The committed control report on He et al.'s files and its per-user HR@10 values (one column per model)."
    from movierec_nb.report import Report
    pu = pd.read_parquet(CONTROL.with_suffix(".per-unit.parquet"))
    hr = pu[pu.metric == "HR@10"]
    return Report.load(CONTROL.with_suffix(".metrics.json")), {m: g.value.to_numpy() for m, g in hr.groupby("model")}


def test_control_exercise_1_paired_user_by_user(control):
    "Our NeuMF minus the authors' code, per user: the decision's difference, and a paired interval inside ±0.03."
    from movierec_nb.stats import paired_comparison
    report, hr = control
    d = hr["NeuMF"] - hr["NeuMF · authors' code"]
    assert d.mean() == pytest.approx(report.results["decision"]["NeuMF"]["difference"])
    pc = paired_comparison(hr["NeuMF"], hr["NeuMF · authors' code"])
    assert -0.03 < pc["low"] <= pc["diff"] <= pc["high"] < 0.03


def test_control_exercise_2_pairing_narrows_the_interval(control):
    "The same users under both models: their shared difficulty cancels in the difference, so the paired interval is narrower."
    from movierec_nb.stats import bootstrap_ci, paired_comparison
    _, hr = control
    a, b = hr["NeuMF"], hr["NeuMF · authors' code"]
    pc = paired_comparison(a, b)
    wa, wb = ((c.high - c.low) for _, c in bootstrap_ci(np.vstack([a, b])).iterrows())
    assert pc["high"] - pc["low"] < 0.75 * np.hypot(wa, wb)


def test_control_exercise_3_the_steps_add_up(control):
    "NeuMF's attribution steps sum to the last setting minus the first."
    report, _ = control
    t = report.table("attribution")
    neumf = t[t.model == "NeuMF"].reset_index(drop=True)
    assert neumf.step.iloc[1:].sum() == pytest.approx(neumf["HR@10"].iloc[-1] - neumf["HR@10"].iloc[0])
    assert neumf.step.notna().sum() == len(neumf) - 1


# ---- 12_kanyuch_deepcf (from the committed report) ----------------------------------------------------------------------

KANYUCH = Path(__file__).parents[1] / "reports" / "kanyuch-deepcf" / "ml-latest-small-quick"


@pytest.fixture(scope="module")
def kanyuch():
    "The committed kanyuch report and its per-unit values of the primary reading (variant '')."
    from movierec_nb.report import Report
    pu = pd.read_parquet(KANYUCH.with_suffix(".per-unit.parquet"))
    return Report.load(KANYUCH.with_suffix(".metrics.json")), pu[pu.variant == ""]


def _ours(report, metric: str) -> float:
    return next(c.ours for c in report.claims if c.metric == metric and not c.variant)


def test_kanyuch_exercise_1_rmse_from_squared_errors(kanyuch):
    "√(mean squared error) over the test ratings is the report's RMSE."
    report, pu = kanyuch
    assert np.sqrt(pu[pu.metric == "RMSE"].value.mean()) == pytest.approx(_ours(report, "RMSE"))


def test_kanyuch_exercise_2_f1_of_means_against_mean_of_f1(kanyuch):
    "F1 of the mean P and R (reported) is above the mean per-user F1 here: users with P or R of 0 pull the latter down."
    report, pu = kanyuch
    p, r = (pu[pu.metric == m].value.to_numpy() for m in ("P@10", "R@10"))
    f1_of_means = 2 * p.mean() * r.mean() / (p.mean() + r.mean())
    per_user = np.divide(2 * p * r, p + r, out=np.zeros_like(p), where=p + r > 0)
    assert f1_of_means == pytest.approx(_ours(report, "F1@10")) and f1_of_means > per_user.mean()


def test_kanyuch_exercise_3_the_reading_the_claim_allows(kanyuch):
    "The primary reading is the first whose perfect ranker reaches R@10 0.6362; the global cut tests mostly unseen users."
    report, _ = kanyuch
    t = report.table("split")
    reach = t.index[t["perfect-ranker R@10"] >= 0.6362].tolist()
    assert report.results["primary reading"] == reach[0] and "global" not in reach
    assert t.loc["global", "test ratings by users without a training rating"] > 0.5


# ---- 13_aam_hybrid (from the committed report) --------------------------------------------------------------------------

AAM = Path(__file__).parents[1] / "reports" / "aam-hybrid" / "ml-100k-quick"


@pytest.fixture(scope="module")
def aam():
    "The committed aam report and its per-user HR@10 values under every definition."
    from movierec_nb.report import Report
    return Report.load(AAM.with_suffix(".metrics.json")), pd.read_parquet(AAM.with_suffix(".per-unit.parquet"))


def test_aam_exercise_1_the_definition_moves_hr_by_more_than_the_margin(aam):
    "The residual hybrid's HR@10 under the four definitions spans far more than the ±0.03 margin."
    _, pu = aam
    by = pu[pu.model == "hybrid with residual"].groupby("variant").value.mean()
    assert len(by) == 4 and by.max() - by.min() > 10 * 0.03


def test_aam_exercise_2_the_residual_block_paired(aam):
    "Residual minus plain, user by user: the report's step; an interval that holds 0 and stays below the paper's +0.03."
    from movierec_nb.stats import paired_comparison
    report, pu = aam
    hr = {m: g.value.to_numpy() for m, g in pu[pu.variant == ""].groupby("model")}
    pc = paired_comparison(hr["hybrid with residual"], hr["hybrid without residual"])
    step = report.results["ordering"]["steps"]["hybrid with residual − hybrid without residual"]
    assert pc["diff"] == pytest.approx(step["mean"]) and pc["low"] < 0 < pc["high"] < 0.03


# ---- 07_claims ----------------------------------------------------------------------------------------------------------

def test_claims_exercise_1_verdicts_by_hand():
    "Claim 0.70, margin 0.03: [0.655, 0.690] − 0.70 = [−0.045, −0.010] crosses −0.03: inconclusive; wholly below: lower."
    from movierec_nb.claims import tost_verdict
    assert tost_verdict(0.70, 0.655, 0.690, 0.03) == "inconclusive"
    assert tost_verdict(0.70, 0.640, 0.665, 0.03) == "lower than claimed"
    assert tost_verdict(0.70, 0.672, 0.712, 0.03) == "reproduced"


def test_claims_exercise_2_fewer_users_do_not_buy_a_reproduction():
    "True 0.66 against a claim of 0.70: with 100 users the old rule says reproduced, the TOST inconclusive; with 10,000, both lower."
    from movierec_nb.claims import tost_verdict
    from movierec_nb.stats import bootstrap_ci
    out = {}
    for n in (100, 10_000):
        x = (np.arange(n) < 0.66 * n).astype(float)                      # exactly 66% hits: no luck of the draw
        ci = bootstrap_ci(x).iloc[0]
        old = "reproduced" if ci["low"] <= 0.70 <= ci["high"] else ("lower than claimed" if ci["high"] < 0.70 else "higher than claimed")
        out[n] = (old, tost_verdict(0.70, ci["tost_low"], ci["tost_high"], 0.03))
    assert out[100] == ("reproduced", "inconclusive")
    assert out[10_000] == ("lower than claimed", "lower than claimed")


# ---- 06a_tuning ---------------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def ease_study(tmp_path_factory):
    "EASE's λ on a synthetic leave-one-out split: a study run to 3 trials, then reopened by name and run to 6."
    from movierec_nb.data import synthetic_frames
    from movierec_nb.tuning import Param, baseline_objective, open_study, run_study, trials_table
    s = split(binarize(synthetic_frames(200, 300, 6_000, fmt="ml-100k", seed=1, scale=(1, 5, 1))["ratings"]), LeaveOneOut())
    space = {"lam": Param("float", 1.0, 1e4, log=True)}
    url = f"sqlite:///{tmp_path_factory.mktemp('optuna') / 'studies.db'}"
    objective = baseline_objective("ease", s, space, SampledCandidates(99, (10,), seed=0))
    first = trials_table(run_study(open_study("ease-lam", space, url), objective, 3))
    again = open_study("ease-lam", space, url)                       # as a new process would
    return first, trials_table(run_study(again, objective, 6)), url


def test_tuning_exercise_1_a_study_resumes(ease_study):
    "Six trials in the end, the first three those of the first run."
    first, final, _ = ease_study
    assert len(first) == 3 and len(final) == 6 and (final.state == "COMPLETE").all()
    pd.testing.assert_frame_equal(final.loc[first.index, ["value", "param lam"]], first[["value", "param lam"]])


def test_tuning_exercise_2_another_space_is_refused(ease_study):
    "Reopening a stored study with another space is an error that names both."
    from movierec_nb.tuning import Param, open_study
    _, _, url = ease_study
    with pytest.raises(ValueError, match="was made with another search space"):
        open_study("ease-lam", {"lam": Param("float", 1.0, 100.0, log=True)}, url)


# ---- 09_tasks -----------------------------------------------------------------------------------------------------------

BOOT_TASKS = {f"seed {k}": {"seed": k} for k in range(3)}


def test_tasks_exercise_1_read_back_or_recomputed(tmp_path):
    "The second run reads every task back; another fingerprint is another key, so nothing is read back."
    from movierec_nb.stats import bootstrap_ci
    from movierec_nb.tasks import run_tasks
    shared = {"values": np.arange(50) % 3 == 0}
    first = run_tasks(bootstrap_ci, BOOT_TASKS, shared, cache=tmp_path, fingerprint="every third user", progress=False)
    again = run_tasks(bootstrap_ci, BOOT_TASKS, shared, cache=tmp_path, fingerprint="every third user", progress=False)
    other = run_tasks(bootstrap_ci, BOOT_TASKS, shared, cache=tmp_path, fingerprint="another input", progress=False)
    assert first.cached == [] and again.cached == list(BOOT_TASKS) and other.cached == []
    assert all(first[k].equals(again[k]) for k in BOOT_TASKS)


def test_tasks_exercise_2_one_process_or_two(tmp_path):
    "Each task seeds itself: one process and two give the same frames to the last digit."
    from movierec_nb.stats import bootstrap_ci
    from movierec_nb.tasks import run_tasks
    shared = {"values": np.arange(50) % 3 == 0}
    one, two = (run_tasks(bootstrap_ci, BOOT_TASKS, shared, processes=p, progress=False) for p in (1, 2))
    assert all(one[k].equals(two[k]) for k in BOOT_TASKS) and not one["seed 0"].equals(one["seed 1"])


# ---- 00_core ------------------------------------------------------------------------------------------------------------

def test_core_exercise_1_seeds():
    "The same seed repeats NumPy's and torch's global draws; another seed does not; the Generator is seeded alike."
    import torch
    from movierec_nb.core import seed_everything
    def draws(seed):
        g = seed_everything(seed)
        return np.random.rand(3).tolist(), torch.rand(3).tolist(), g.random(3).tolist()
    assert draws(0) == draws(0) and draws(0) != draws(1)


def test_core_exercise_2_checksums(real_root):
    "hashlib, file_digest and the registry agree on ml-100k's u.data."
    import hashlib
    from movierec_nb.core import file_digest
    from movierec_nb.data import dataset_info
    path = real_root / "ml-100k" / "u.data"
    ours = hashlib.sha256(path.read_bytes()).hexdigest()
    assert file_digest(path, memo=False) == ours
    assert dataset_info("ml-100k").known_files["u.data"] == f"sha256:{ours}"


# ---- 08_summary (from the committed control report) ---------------------------------------------------------------------

def _row_and_values(control, model: str):
    "A claim row of the control report and its per-unit HR@10 values, by data seed (one group here)."
    report, _ = control
    c = next(c for c in report.claims if c.model == model and c.metric == "HR@10")
    pu = pd.read_parquet(CONTROL.with_suffix(".per-unit.parquet"))
    g = pu[(pu.model == model) & (pu.metric == "HR@10")]
    return c, [v.value.to_numpy() for _, v in g.groupby("group")]


def test_summary_exercise_1_an_interval_recomputed(control):
    "The stored interval comes back to the last digit; another bootstrap seed moves its ends by well under 0.005."
    from movierec_nb.stats import estimate
    c, values = _row_and_values(control, "ease")
    e = estimate(values, c.extra_sd, c.transform or None, seed=c.boot_seed)
    assert (e["low"], e["high"]) == pytest.approx((c.low, c.high), abs=1e-12)
    e1 = estimate(values, c.extra_sd, c.transform or None, seed=c.boot_seed + 1)
    assert 0 < max(abs(e1["low"] - c.low), abs(e1["high"] - c.high)) < 0.005


def test_summary_exercise_2_training_seeds_widen_the_interval(control):
    "Without the spread between training seeds the MLP's interval is narrower: it would hide how much a retrain moves."
    from movierec_nb.stats import estimate
    c, values = _row_and_values(control, "MLP")
    narrow = estimate(values, 0.0, c.transform or None, seed=c.boot_seed)
    assert c.extra_sd > 0 and narrow["high"] - narrow["low"] < c.high - c.low


# ---- 20_reproduce -------------------------------------------------------------------------------------------------------

def test_reproduce_exercise_1_which_edits_make_a_report_stale():
    "Markdown moves the prose fingerprint only; a comment or a docstring moves neither; a line of code moves the code's."
    import json
    from movierec_nb import reproduce as R
    def edited(path_to_edit: str, change):
        return lambda path: change(R._working_tree(path)) if path == path_to_edit else R._working_tree(path)
    def with_cell(kind: str, change):
        def edit(text):
            nb = json.loads(text)
            cell = next(c for c in nb["cells"] if c["cell_type"] == kind and "#| export" not in "".join(c["source"]))
            cell["source"] = change("".join(cell["source"]))
            return json.dumps(nb)
        return edited("nbs/01_data.ipynb", edit)
    base = R.code_fingerprint("01_data.ipynb"), R.prose_fingerprint("01_data.ipynb")
    fp = lambda read: (R.code_fingerprint("01_data.ipynb", read), R.prose_fingerprint("01_data.ipynb", read))
    markdown = fp(with_cell("markdown", lambda s: s + " (reworded)"))
    comment = fp(with_cell("code", lambda s: s + "  # a comment"))
    assert '"""Load MovieLens release' in R._working_tree("movierec_nb/data.py")        # the docstring edited below
    docstring = fp(edited("movierec_nb/data.py", lambda s: s.replace('"""Load MovieLens release', '"""Load the MovieLens release', 1)))
    code = fp(with_cell("code", lambda s: s + "\nextra = 1"))
    assert markdown[0] == base[0] and markdown[1] != base[1]
    assert comment == base and docstring == base
    assert code[0] != base[0] and code[1] == base[1]


def test_reproduce_exercise_2_the_quick_profile_listed():
    "Runs per chapter; the NCF chapters on the three local datasets; the summary, which reads the others, last."
    from collections import Counter
    from movierec_nb.reproduce import plan
    runs = plan("quick")
    assert Counter(r.chapter for r in runs)["zeng-embedding"] == Counter(r.chapter for r in runs)["wang-ncf"] == 3
    assert {r.label for r in runs if r.chapter == "wang-ncf"} == {"ml-100k", "ml-latest-small", "ml-1m-partial"}
    assert [r.reads_reports for r in runs].index(True) == len(runs) - 1 and runs[-1].chapter == "summary"


# ---- 00a_report ---------------------------------------------------------------------------------------------------------

def test_report_exercise_1_labels():
    "The release's name, the folder's name for a subset, a suffix for a second reading."
    from movierec_nb.report import report_label
    assert report_label("ml-100k") == "ml-100k"
    assert report_label("ml-1m", "ml-1m-partial") == "ml-1m-partial"
    assert report_label("ml-latest-small", None, "per-user") == "ml-latest-small-per-user"


def test_report_exercise_2_how_a_report_was_made(real_root):
    "A committed report names a clean commit, and the checksum it recorded for u.data is the file's."
    import hashlib
    from movierec_nb.report import Report
    m = Report.load(AAM.with_suffix(".metrics.json")).manifest
    assert len(m["git"]["commit"]) == 40 and m["git"]["dirty"] is False
    recorded = next(f["sha256"] for d in m["data"] for f in d["files"] if f["file"] == "u.data")
    assert recorded == hashlib.sha256((real_root / "ml-100k" / "u.data").read_bytes()).hexdigest()


# ---- 15a_ncf_reference --------------------------------------------------------------------------------------------------

class _ByScore:
    "A stand-in for a Keras model: `predict([users, items])` returns `f(items)`."
    def __init__(self, f): self.f = f
    def predict(self, x, batch_size=None, verbose=0): return self.f(x[1].ravel().astype(float))


def test_reference_exercise_1_ties_count_against_the_test_item():
    "Every score equal: the held-out movie comes after its 99 negatives in the dict, rank 99, no hit."
    from movierec_nb.models.he_keras import evaluate_model
    users, gt = np.arange(3), np.array([500, 501, 502])
    negatives = np.arange(3)[:, None] * 1000 + np.arange(1, 100)[None, :]     # row r: movies 1000r + 1 ... 1000r + 99
    flat = evaluate_model(_ByScore(np.zeros_like), users, gt, negatives)
    assert (flat["HR@10"] == 0).all()
    best = evaluate_model(_ByScore(lambda i: (i >= 500) & (i < 600)), users, gt, negatives)   # the held-out movies score highest
    assert (best["HR@10"] == 1).all() and (best["NDCG@10"] == 1).all()


def test_reference_exercise_2_a_repeated_candidate_is_scored_once():
    "The held-out movie among its own negatives: scored once, at its first place; the rank is that of the row without it."
    from movierec_nb.models.he_keras import evaluate_model
    without = np.setdiff1d(np.arange(1, 101), [95])[None, :]           # 99 negatives, movies 1..100 but the held-out 95
    with_repeat = without.copy(); with_repeat[0, 0] = 95             # movie 1 replaced by the held-out movie itself
    model = _ByScore(lambda i: i)                                    # scores by id: 96..100 beat 95 either way
    plain = evaluate_model(model, np.array([0]), np.array([95]), without)
    rep = evaluate_model(model, np.array([0]), np.array([95]), with_repeat)
    assert rep["NDCG@10"].iloc[0] == plain["NDCG@10"].iloc[0] == pytest.approx(np.log(2) / np.log(5 + 2))   # rank 5 (0-based)


# ---- 21_bench (from the committed reports) ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def profile():
    from movierec_nb.bench import profile_table
    return profile_table("quick", Path(__file__).parents[1] / "reports")


def test_bench_exercise_1_shares_of_the_profile(profile):
    "Each report counted once; a chapter's share is its phases' seconds over that total; a report's phases cover its wall time."
    t = profile
    whole = t.drop_duplicates("report")["report seconds"].sum()
    by_chapter = t.groupby("chapter").seconds.sum() / whole
    assert np.allclose(t.groupby("chapter")["chapter share"].first().reindex(by_chapter.index), by_chapter)
    assert (t.groupby("report").seconds.sum() >= t.groupby("report")["report seconds"].first() - 1e-6).all()


def test_bench_exercise_2_the_costliest_phase(profile):
    "The first row is the costliest phase of the profile; its share is its seconds over every report's wall time added up."
    t = profile
    top = t.iloc[0]
    assert top.seconds == t.seconds.max()
    assert top["share of profile"] == pytest.approx(top.seconds / t.drop_duplicates("report")["report seconds"].sum())


# ---- 22_readme and 23_docs ----------------------------------------------------------------------------------------------

REPORTS = Path(__file__).parents[1] / "reports"


def test_readme_exercise_1_a_readme_of_your_own(tmp_path):
    "The marker becomes the list of committed reports, with each report's commit and wall time."
    import nbformat
    from movierec_nb.readme import REPORTS_MARKER, render_readme
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# Mine"), nbformat.v4.new_markdown_cell(REPORTS_MARKER)])
    nbformat.write(nb, tmp_path / "index.ipynb")
    text = render_readme(index=tmp_path / "index.ipynb", reports=REPORTS)
    assert REPORTS_MARKER not in text and "`quick` report(s)" in text and "[aam-hybrid/ml-100k-quick](reports/aam-hybrid/ml-100k-quick.ipynb)" in text


def test_readme_exercise_2_counted_not_typed():
    "The number of paper-profile reports the README states is the number of their metrics files."
    from movierec_nb.readme import reports_markdown
    n = len([p for p in REPORTS.glob("*/*-paper.metrics.json") if p.parent.name != "summary"])
    assert f"{n} `paper` report(s)" in reports_markdown(REPORTS)


def test_docs_exercise_1_a_broken_link_caught(tmp_path):
    "A missing page and a missing image are reported; an existing page, an anchor and an external link are not."
    from movierec_nb.docs import site_problems
    (tmp_path / "there.html").write_text("<p>here</p>")
    (tmp_path / "index.html").write_text('<a href="there.html#top">ok</a> <a href="gone.html">gone</a> <img src="img/lost.png"> '
                                         '<a href="https://grouplens.org">out</a> <a href="#local">anchor</a>')
    assert site_problems(tmp_path) == ["index.html: gone.html", "index.html: img/lost.png"]


def test_docs_exercise_2_where_each_report_lands(tmp_path):
    "report_pages keeps every committed report of a folder and leaves test-profile, partial and failed runs out."
    from movierec_nb.docs import report_pages
    for name in ("ml-100k-quick.ipynb", "ml-1m-partial-paper.ipynb", "synthetic-test.ipynb", "ml-100k-quick.partial-12.ipynb",
                 "ml-100k-quick.failed.ipynb"):
        (tmp_path / "aam-hybrid").mkdir(exist_ok=True); (tmp_path / "aam-hybrid" / name).write_text("{}")
    assert [p.name for p in report_pages(tmp_path, "aam-hybrid")] == ["ml-100k-quick.ipynb", "ml-1m-partial-paper.ipynb"]
    committed = {p.name for p in (REPORTS / "aam-hybrid").glob("*.ipynb") if p.name.endswith(("-quick.ipynb", "-paper.ipynb"))}
    assert {p.name for p in report_pages(REPORTS, "aam-hybrid")} == committed and committed


# ---- 06_experiments, 10_zeng_embedding, 11_wang_ncf (from the committed reports) ----------------------------------------

@pytest.fixture(scope="module")
def zeng():
    from movierec_nb.report import Report
    return Report.load(REPORTS / "zeng-embedding" / "ml-100k-quick.metrics.json")


@pytest.fixture(scope="module")
def wang():
    from movierec_nb.report import Report
    return Report.load(REPORTS / "wang-ncf" / "ml-100k-quick.metrics.json")


def test_experiments_exercise_1_same_users_same_candidates(zeng):
    "Every paired difference the report lists has its interval around its mean; those clear of 0 have a small Holm p."
    for c in zeng.results["comparisons"]:
        assert c["low"] <= c["diff"] <= c["high"]
        if c["high"] < 0 or c["low"] > 0: assert c["p_holm"] < 0.05
    assert any(c["versus"] == "ease" and c["high"] < 0 for c in zeng.results["comparisons"])   # EASE beats the network here


def test_experiments_exercise_2_data_seeds_or_training_seeds(zeng):
    "The spread over data seeds is above the spread over training seeds for HR@10 on ml-100k: more data seeds pay more."
    v = zeng.results["variance"]["HR@10"]
    assert v["sd over data seeds"] > v["sd over training seeds"] > 0


def test_zeng_exercise_1_the_catalogue_effect(zeng):
    "Negatives among rarely rated movies raise the network's HR@10 by more than 0.3; popularity leads under every catalogue."
    cat = zeng.table("catalogue")
    net = cat.loc["zeng-embedding"]
    assert net["<= 5"] - net["any"] > 0.3
    assert (cat.loc["popularity"] >= net).all()


def test_zeng_exercise_2_a_network_that_is_popularity(zeng):
    "At the paper's settings the network ranks as popularity does (ρ near 1) and gets popularity's sampled HR@10."
    t = zeng.table("ceiling")
    net, pop = t.loc["zeng-embedding (paper settings)"], t.loc["popularity"]
    assert net["popularity rho"] > 0.95 and abs(net["HR@10"] - pop["HR@10"]) < 0.01


def test_zeng_exercise_3_more_candidates_closer_to_the_full_order(zeng):
    "The models' order under 804 sampled candidates agrees better with the full catalogue's than under 99."
    tau = zeng.table("orders_tau")
    assert tau.loc["sampled 99", "full"] < tau.loc["sampled 804", "full"] <= 1


def test_wang_exercise_1_one_seed_or_three(wang):
    "The per-seed differences disagree in sign; the finding's interval over the seeds holds 0, so it is inconclusive."
    per_seed = wang.results["active_minus_inactive_hr10"]["per_seed"].values()
    f = next(f for f in wang.findings if f.claim.startswith("active users"))
    assert min(per_seed) < 0 < max(per_seed)
    assert f.low < 0 < f.high and f.verdict == "inconclusive"


def test_wang_exercise_2_fewer_users_wider_intervals(wang):
    "Each model's HR@10 interval narrows as the share of users grows, roughly as 1/√users (about √10 ≈ 3 from 10% to 100%)."
    t = wang.table("shares").assign(width=lambda d: d["HR@10 high"] - d["HR@10 low"])
    for _, g in t.groupby("model"):
        w = g.set_index("share").width.sort_index()
        assert w.is_monotonic_decreasing and 2 < w.iloc[0] / w.iloc[-1] < 4.5


def test_wang_exercise_3_a_waterfall_read_critically(wang):
    "The chain's changes lead from its first row to the claim; every row but the claim is a measured hit ratio with its interval."
    gap = wang.table("gap")
    chain = gap[gap["in chain"].astype(bool)]
    assert chain.change.iloc[1:].sum() == pytest.approx(chain["HR@10"].iloc[-1] - chain["HR@10"].iloc[0])
    measured = chain.iloc[:-1]
    assert ((measured["HR@10"] >= 0) & (measured["HR@10"] <= 1)).all() and (measured["low"] <= measured["HR@10"]).all()
    steps = chain.iloc[1:]
    widths = (measured["high"] - measured["low"]).to_numpy()
    noisy = [i for k, i in enumerate(steps.index[:-1]) if abs(steps.loc[i, "change"]) < max(widths[k], widths[k + 1]) / 2]
    assert steps.loc[[i for i in steps.index if "negatives among" in i], "change"].gt(0).all()   # obscure negatives raise HR@10
    assert all(i in steps.index for i in noisy)   # the steps lost in the noise of the rows they join (the answer, not a rule)


# ---- 14_liu_survey and 14a_liu_verdicts (from the committed report) -----------------------------------------------------

@pytest.fixture(scope="module")
def liu():
    from movierec_nb.report import Report
    return Report.load(REPORTS / "liu-survey" / "ml-100k-quick.metrics.json")


def test_liu_exercise_1_a_trend_refitted(liu):
    "OLS of the deep-minus-traditional difference on log10 of the training interactions gives the report's slope."
    from scipy.stats import linregress
    pts = pd.DataFrame(liu.results["trend"]["points"])
    fit = linregress(np.log10(pts["train interactions"]), pts["difference"])
    assert fit.slope == pytest.approx(liu.results["trend"]["slope"]) and liu.results["trend"]["n"] == len(pts)


def test_liu_exercise_2_what_early_stopping_leaves_behind(liu):
    "Epochs run minus the best epoch is the patience for every model stopped early in every seed."
    c = liu.table("convergence")
    seeds = int(liu.table("full_bench")["seeds"].max())
    gaps = (c["epochs (mean)"] - c["best epoch (mean)"])[c["stopped early"] == seeds].round(9)
    assert len(gaps) >= 2 and gaps.nunique() == 1 and gaps.iloc[0] >= 1


def test_liu_verdicts_exercise_1_a_rule_applied_by_hand(liu):
    "Every finding decided by 'above 0 / below 0 / otherwise' has the verdict its interval gives."
    rule = "supported if its 95% interval is above 0, contradicted if below 0, inconclusive otherwise"
    checked = 0
    for f in liu.findings:
        if rule not in f.rule: continue
        mine = "supported" if f.low > 0 else "contradicted" if f.high < 0 else "inconclusive"
        assert mine == f.verdict, f.claim
        checked += 1
    assert checked >= 2


def test_liu_verdicts_exercise_2_gru_against_lstm():
    "Faster in every seed (by 5%), fewer parameters, and not worse beyond 0.05: each condition can break the verdict."
    from movierec_nb.models.liu_verdicts import gru_verdict
    assert gru_verdict(np.array([0.90, 0.92, 0.88]), (100e3, 120e3), -0.02) == "supported"
    assert gru_verdict(np.array([0.90, 0.97, 0.88]), (100e3, 120e3), -0.02) == "not supported"     # one seed not 5% faster
    assert gru_verdict(np.array([0.90, 0.92, 0.88]), (100e3, 120e3), -0.06) == "not supported"     # may be worse beyond the margin
    assert gru_verdict(np.array([0.90, 0.92, 0.88]), (130e3, 120e3), -0.02) == "not supported"     # more parameters
