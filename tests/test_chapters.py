"""Paper chapters end to end: papermill runs in the test profile (synthetic data), the saved `Report` read back."""
from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

from movierec_nb import reproduce as R
from movierec_nb.claims import claims_for
from movierec_nb.models.wang_ncf import WangNCF
from movierec_nb.models.zeng_embedding import ZengEmbedding
from movierec_nb.report import PER_UNIT, Report
from movierec_nb.train import model_summary
from conftest import assert_clean_report, drop_summary

NCF = ("zeng-embedding", "wang-ncf")
# Chapters whose task lists use a pool run in one process here: pytest's two workers already fill the machine, and a pool of two
# more only adds two interpreters' start-up (about 20 s of CPU for aam). The pool path of `run_groups` is tested in 09_tasks, a
# chapter's task list in a pool and on a cluster in tests/test_cluster.py.
ONE_PROCESS = ["--set", "processes=1"]


@pytest.fixture(scope="module")
def ncf_reports(tmp_path_factory):
    "Both NCF-family chapters in the test profile, run one after the other (--jobs 1; no summary)."
    out = tmp_path_factory.mktemp("ncf-jobs1")
    with pytest.MonkeyPatch.context() as mp:
        drop_summary(mp)
        assert R.main(["--profile", "test", "--paper", NCF[0], "--paper", NCF[1], "--reports", str(out), "--device", "cpu", "--jobs", "1"]) == 0
    return out


def assert_recomputed(reports, chapter):
    "Every measured claim of the chapter's test report: its interval recomputed from the per-unit values stored beside it is the same."
    from movierec_nb.summary import recompute_claims
    rc = recompute_claims(reports, "test")
    rc = rc[rc.report.str.startswith(chapter + "/")]
    assert len(rc) and (rc.status == "equal").all(), rc.to_string()


@pytest.mark.xdist_group("ncf-reports")       # under `pytest -n`, the tests of the module fixture share one worker (it runs once)
@pytest.mark.parametrize("paper", NCF)
def test_ncf_chapter_report_on_synthetic_data(paper, ncf_reports):
    r = Report.load(ncf_reports / paper / "synthetic-test.metrics.json")
    assert (r.paper, r.label, r.profile) == (paper, "synthetic", "test") and r.manifest["params"]["device"] == "cpu"
    assert [c.metric for c in r.claims] == [c.metric for c in claims_for(paper)]
    ours = r.results["mean"][paper]
    # the claim is judged on all users at the paper's settings (the ceilings section); the papers' 30% sample is quoted beside it
    ceiling = r.table("ceiling")
    assert r.claims[0].ours == pytest.approx(ceiling.loc[f"{paper} (paper settings)", "HR@10"])
    assert "30% sample" in r.claims[0].our_dataset and f"{ours['sampled HR@10']:.3f}" in r.claims[0].our_dataset
    assert set(ceiling.setting) == {"paper", "defaults", "tuned"} and f"{paper} (tuned)" in ceiling.index and "ease (tuned)" in ceiling.index
    assert r.results["tuned"][paper]["trials"] == 2 and r.results["tuned"][paper]["resumed"] == 0
    gap = r.table("gap")
    assert gap.factor.iloc[-1] == "unexplained" and "data scale" in set(gap.factor) and r.results["conclusion"].startswith("The paper claims")
    chain = gap[gap["in chain"]]
    assert chain["change"].iloc[1:].sum() == pytest.approx(chain["HR@10"].iloc[-1] - chain["HR@10"].iloc[0])   # the waterfall adds up
    assert "claim itself" not in r.results["conclusion"]
    # every row of the chain but the claim is measured (no row built from another network's step), with the training seeds it used
    assert ((chain["HR@10"].iloc[:-1] <= 1) & chain["low"].iloc[:-1].notna()).all() and chain.index[-2].startswith(f"{paper} (tuned), negatives")
    assert ceiling.loc[[f"{paper} (paper settings)", f"{paper} (tuned)"], "training seeds"].tolist() == [2, 2] and pd.read_parquet(ncf_reports / paper / f"synthetic-test.{PER_UNIT}").group.nunique() == 2
    assert r.claims[0].ours_sd >= 0 and "2 training seeds" in r.claims[0].our_dataset
    assert {row["share"] for row in r.results["shares"]} == {0.3, 1.0}   # the scale curve: the test profile's two user shares
    assert 0 <= ours["full HR@10"] <= ours["sampled HR@10"] <= 1
    # the deep model and every baseline of the test profile were scored on the same split
    assert set(r.results["mean"]) == {paper, "popularity", "ease", "dot-mf"}
    assert r.results["mean"]["popularity"]["sampled HR@10"] > 0.15   # popularity beats chance on synthetic data too
    assert r.manifest["threads"] == 1 and r.timings["seeds"] > 0
    # the verdict is judged on an interval over users; the paired family answers "is it different from popularity?"
    c = r.claims[0]
    assert c.low <= c.tost_low <= c.ours <= c.tost_high <= c.high and c.n > 0
    # synthetic data are not the paper's: the row stands beside the claim, undecided, with its margin
    assert (c.where, c.verdict, c.margin) == ("substitute", "not tested on the paper's data", 0.03)
    comp = r.results["comparisons"]
    assert {row["versus"] for row in comp} >= {"popularity"} and all(row["p_holm"] >= row["p"] and row["low"] <= row["diff"] <= row["high"] for row in comp)
    assert len(r.results["per_training_seed"]) == 2 and set(r.results["variance"]) == {"HR@10", "NDCG@10"}
    assert [f.claim for f in r.findings] == [c.metric for c in claims_for(paper, qualitative=True)]
    assert all(f.verdict in ("supported", "contradicted", "inconclusive") and f.low <= f.value <= f.high for f in r.findings)
    for fig in ("data", "training", "results", "intervals", "catalogue", "ceiling"):
        assert (ncf_reports / paper / "figures" / f"synthetic-test-{fig}.png").stat().st_size > 10_000   # a drawn figure, not an empty canvas
    assert_recomputed(ncf_reports, paper)
    assert_clean_report(ncf_reports / paper / "synthetic-test.ipynb", paper)
    # why a network looks like popularity, the catalogue sweep and the protocol orders (first data seed)
    assert r.table("diagnostics").loc["popularity", "popularity rho"] == pytest.approx(1.0)
    cat = r.table("catalogue")
    assert cat.columns[0] == "any" and set(cat.index) == set(r.results["mean"]) and ((cat >= 0) & (cat <= 1)).all().all()
    tau = r.table("orders_tau")
    assert list(tau.columns) == ["sampled 99", tau.columns[1], "full"] and (tau.to_numpy().diagonal() == 1).all()
    assert "test_HR@10" in r.results["runs"][0]["history"] and r.results["runs"][0]["split"]["valid"] == 0   # no validation item, as the papers
    ml20m = Path(os.environ.get("MOVIEREC_DATA_DIR", "/nonexistent")) / "ml-20m" / "movies.csv"
    if paper == "wang-ncf" and (ml20m.is_file() or os.environ.get("MOVIEREC_REQUIRE_REAL_DATA")):   # required in CI   # Table 1's "1 M" from raw-id tables, and Figure 1 from ML-20M's own movies
        sizes = r.table("table1_sizes")
        assert sizes.loc["user_embedding", "largest raw id + 1 (the tutorial's)"] == 138_494 * 8
        assert sizes.loc["item_embedding", "largest raw id + 1 (the tutorial's)"] == 131_263 * 8
        assert sum(r.results["ml20m_genres"].values()) > 27_278 and (ncf_reports / paper / "figures" / "synthetic-test-figure1-ml20m.png").stat().st_size > 10_000


def _accuracy(report: Report) -> dict:
    "Every number of a report but its timings and manifest."
    return {"claims": [(c.model, c.metric, c.ours, c.ours_sd, c.low, c.high) for c in report.claims],
            "findings": [(f.claim, f.value, f.low, f.high) for f in report.findings], "comparisons": report.results["comparisons"],
            "mean": {m: {k: v for k, v in row.items() if not k.endswith("_s")} for m, row in report.results["mean"].items()}}


@pytest.mark.xdist_group("ncf-reports")
def test_numbers_do_not_depend_on_jobs(ncf_reports, tmp_path, no_summary, monkeypatch):
    """The same chapters run two at a time in worker processes give the same numbers, to the last bit, as one at a time. The rerun
    gets a cache of its own, so its tuning studies and training tasks are computed again, not read back from the first run."""
    monkeypatch.setenv("MOVIEREC_CACHE_DIR", str(tmp_path / "fresh-cache"))
    assert R.main(["--profile", "test", "--paper", NCF[0], "--paper", NCF[1], "--reports", str(tmp_path), "--device", "cpu", "--jobs", "2"]) == 0
    for paper in NCF:
        one, two = (Report.load(d / paper / "synthetic-test.metrics.json") for d in (ncf_reports, tmp_path))
        assert two.manifest.get("reused", {}) == {}, paper                                  # nothing read back from the first run
        assert two.results["tuned"] and all(t["resumed"] == 0 for t in two.results["tuned"].values()), paper
        assert _accuracy(one) == _accuracy(two) and one.results["tuned"] == two.results["tuned"], paper
        assert one.manifest["threads"] == two.manifest["threads"] == 1


def test_parameter_counts_match_the_papers():
    z = model_summary(ZengEmbedding(1000, 500)).set_index("name").params
    assert (z["fc1"], z["fc2"], z["output"]) == (1_088, 2_080, 33)
    w = model_summary(WangNCF(1000, 500)).set_index("name").params
    assert [w[k] for k in ("fc1", "fc2", "fc3", "fc4", "output", "batch_norm1", "batch_norm2", "batch_norm3")] == \
        [2_176, 8_256, 2_080, 528, 17, 256, 128, 64]


def test_kanyuch_chapter_report_on_synthetic_data(tmp_path, no_summary):
    assert R.main(["--profile", "test", "--paper", "kanyuch-deepcf", "--reports", str(tmp_path), "--device", "cpu"]) == 0
    r = Report.load(tmp_path / "kanyuch-deepcf" / "synthetic-test.metrics.json")
    registered = [c.metric for c in claims_for("kanyuch-deepcf")]
    assert [c.metric for c in r.claims][:len(registered)] == registered and not any(c.variant for c in r.claims[:len(registered)])
    main = r.results["primary reading"]                                                   # decided by the paper's recall (`primary_reading`)
    ceiling = pd.DataFrame(r.results["split"]).T["perfect-ranker R@10"].astype(float)
    assert main == next(k for k in ("global", "per-user", "random") if ceiling[k] >= 0.6362)
    others = [k for k in ("global", "per-user", "random") if k != main]
    assert [c.variant for c in r.claims[len(registered):]] == [f"{k} reading" for k in others for _ in range(8)]   # one verdict per reading
    cells = pd.DataFrame(r.results["attribution"]).set_index(["reading", "model", "metric"]).sort_index()
    assert set(cells.index.get_level_values("reading")) == {"global", "per-user", "random"}      # the three readings of the split
    rows = {"plain, paper settings", "plain + early stopping", "plain, tuned", "attention, paper settings", "SVD", "SVD, tuned",
            "KNNBaseline", "KNNBaseline, tuned", "BaselineOnly", "global mean"}
    for reading in ("global", "per-user", "random"):
        assert set(cells.loc[reading].index.get_level_values("model")) == rows
    assert (cells["low"] <= cells["mean"] + 1e-12).all() and (cells["mean"] <= cells["high"] + 1e-12).all()
    ours = cells.loc[(main, "plain, paper settings")]["mean"]                         # the claims: the paper's network on the primary reading
    assert 0 < ours["RMSE"] < 2 and ours["MAE"] <= ours["RMSE"]
    assert r.claims[0].ours == pytest.approx(ours["RMSE"])
    # own-items precision is far above full-catalogue precision: the protocol, not the model, makes it high
    assert ours["own-items P@10"] > ours["full P@10"]
    steps = pd.DataFrame(r.results["steps"])
    assert steps.step.iloc[0] == "the paper's network and settings" and steps.RMSE.iloc[0] == pytest.approx(ours["RMSE"])
    assert "claims RMSE 0.9001" in r.results["conclusion"]
    for e in r.results["explanations"].values():
        assert len(e) == 10 and all(abs(row["user preferences"] + row["movie characteristics"] - 1) < 1e-5 for row in e)
        assert all(0 <= row["strength"] <= 1 for row in e)
    assert {"train_loss", "val_loss", "val_RMSE", "train_RMSE", "lr"} <= set(r.results["histories"]["global | plain, paper settings | seed 0"])
    assert all(0 <= d["low"] <= d["mean"] <= d["high"] <= 1 for d in r.results["diversity"].values())
    assert all(c.low <= c.ours <= c.high and c.n > 0 for c in r.claims)
    assert all(c.where == "substitute" and c.verdict == "not tested on the paper's data" for c in r.claims)   # synthetic, not ml-latest-small
    assert [f.claim for f in r.findings] == [c.metric for c in claims_for("kanyuch-deepcf", qualitative=True)]
    untestable = "explanations weight user preference 0.65 for its example user"    # an illustration in the paper: shown, not decided
    assert [f.verdict for f in r.findings if f.claim == untestable] == ["not a testable claim"]
    assert all(f.verdict in ("supported", "contradicted", "inconclusive") and f.low <= f.value <= f.high for f in r.findings if f.claim != untestable)
    assert_recomputed(tmp_path, "kanyuch-deepcf")


def test_aam_hybrid_chapter_report_on_synthetic_data(tmp_path, no_summary):
    assert R.main(["--profile", "test", "--paper", "aam-hybrid", "--reports", str(tmp_path), "--device", "cpu", *ONE_PROCESS]) == 0
    r = Report.load(tmp_path / "aam-hybrid" / "synthetic-test.metrics.json")
    registered = [(c.model, c.metric) for c in claims_for("aam-hybrid")]
    assert [(c.model, c.metric) for c in r.claims][:4] == registered and not any(c.variant for c in r.claims[:4])
    variants = [c.variant for c in r.claims[4:]]     # one row per model under each other candidate definition of the paper's HR
    assert len(variants) == 12 and len(set(variants)) == 3 and all(v.endswith("random 80/20") for v in variants)
    mean = r.results["mean"]
    assert set(mean) == {"hybrid with residual", "hybrid without residual", "KNN", "SVD", "EASE", "iALS", "popularity"}
    res, plain = mean["hybrid with residual"], mean["hybrid without residual"]
    assert r.claims[3].ours == pytest.approx(res["sampled HR@10"])
    # the ablation is measured: its per-seed difference is what the two runs gave
    assert r.results["ablation"]["mean"]["sampled HR@10"] == pytest.approx(res["sampled HR@10"] - plain["sampled HR@10"])
    runs = r.results["runs"]
    assert {"train_MSE", "train_RMSE", "train_MAE", "val_MSE", "val_RMSE", "val_MAE"} <= set(runs["residual seed=0"]["history"])
    assert runs["residual seed=0"]["n_params"] == runs["plain seed=0"]["n_params"]
    assert {row["factor"] for row in r.results["sensitivity"]} == {"dim", "dropout"} and r.results["per_epoch_s"]["residual"] > 0
    assert [row["factor"] for row in r.results["table9_paired"]] == ["dim"]      # the paired rule: factors with a middle value
    assert all(c.low <= c.ours <= c.high for c in r.claims)
    assert all(c.verdict == "definition unknown" for c in r.claims)      # the paper's HR@K names neither K nor the candidates
    assert_recomputed(tmp_path, "aam-hybrid")
    assert [f.claim for f in r.findings] == [c.metric for c in claims_for("aam-hybrid", qualitative=True)]
    for fig in ("architecture", "training-curves", "topk", "sensitivity"):
        assert (tmp_path / "aam-hybrid" / "figures" / f"synthetic-test-{fig}.png").stat().st_size > 10_000
    tables = r.results["tables"]                                   # the paper's Tables 2-7, from the loaded data
    assert [k.split(":")[0] for k in tables] == [f"Table {k}" for k in range(2, 8)]
    assert [row["Age"] for row in tables["Table 5: age codes"]] == [1, 18, 25, 35, 45, 50, 56]
    hr = pd.DataFrame(r.results["hr_definitions"])                  # four HR definitions x K x the paper's models and two baselines
    assert set(hr.definition) == {"sampled, leave-one-out", "sampled, random 80/20", "own items, random 80/20", "rating >= 4, random 80/20"}
    assert len(hr) == 6 * 4 * 3 and hr["mean"].between(0, 1).all()
    assert [v["ordering"] in ("supported", "contradicted", "inconclusive") for v in r.results["hr_verdicts"]] == [True] * 4


def test_aam_hybrid_needs_demographics(tmp_path):
    from movierec_nb.data import load_movielens, write_synthetic
    from movierec_nb.models.aam_hybrid import side_features
    from movierec_nb.splits import IdMap
    folder = write_synthetic(tmp_path / "s", "ml-latest-small", n_users=20, n_items=50, n_ratings=400)
    data = load_movielens("ml-latest-small", path=folder)
    with pytest.raises(ValueError, match="needs user demographics"):
        side_features(data, IdMap.from_ratings(data.ratings))


def test_liu_survey_chapter_report_on_synthetic_data(tmp_path, no_summary):
    "Every model at every share and seed, trained to early stopping after tuning, with its own costs; every claim decided by its registered rule."
    from movierec_nb.models.liu_survey import FAMILY, NEURAL, TUNE_SPACES
    from movierec_nb.summary import collect_trends, pooled_trend, trend_markdown
    assert R.main(["--profile", "test", "--paper", "liu-survey", "--reports", str(tmp_path), "--device", "cpu"]) == 0
    r = Report.load(tmp_path / "liu-survey" / "synthetic-test.metrics.json")
    bench = r.results["bench"]
    assert {b["model"] for b in bench} == set(FAMILY) and {(b["fraction"], b["seed"]) for b in bench} == {(0.5, 0), (0.5, 1), (1.0, 0), (1.0, 1)}
    for b in bench:
        assert 0 <= b["full HR@10"] <= b["sampled HR@10"] <= 1 and b["fit s"] >= 0 and b["inference s"] > 0 and b["parameters"] > 0
        assert b["model MB"] > 0 or b["model"] == "popularity"
        assert (b["RMSE"] is not None and b["RMSE"] == b["RMSE"]) == (b["model"] in ("MLP (ANN)", "text CNN") or "CF" in b["model"])
        assert (b["epochs"] == b["epochs"]) == (b["model"] in NEURAL)        # networks only: epochs run, at most the cap
        if b["model"] in NEURAL: assert 1 <= b["best epoch"] <= b["epochs"] <= 2
    assert set(r.results["tuning"]) == set(TUNE_SPACES) and all(t["trials"] == 2 for t in r.results["tuning"].values())
    assert r.results["trend"]["n"] == 4 and {"slope", "low", "high", "p"} <= set(r.results["trend"])
    assert r.findings and all(f.verdict in ("supported", "not supported", "contradicted", "inconclusive", "not tested") for f in r.findings)
    assert not r.claims
    registered = {c.metric for c in claims_for("liu-survey", qualitative=True)}
    assert {f.claim for f in r.findings} == registered     # every registered claim is decided, and nothing else
    for f in r.findings:     # every statistic with its interval (the cost rule has none)
        if f.claim != "KNN/CF have high computational and memory cost" and f.verdict != "not tested": assert f.low <= f.value <= f.high, f
    from movierec_nb.report import FINDING_UNITS     # each interval's units, stored beside the report
    from movierec_nb.stats import recompute_finding
    units = pd.read_parquet(tmp_path / "liu-survey" / f"synthetic-test.{FINDING_UNITS}")
    assert set(units.claim) == {f.claim for f in r.findings if f.low == f.low}
    gru = next(f for f in r.findings if f.claim.startswith("GRU"))
    assert "equal settings" in gru.statistic and "tuned width" in gru.evidence and {b["model"] for b in r.results["gru_lstm_equal"]} == {"GRU", "LSTM"}
    g = units[units.claim == gru.claim]
    assert recompute_finding(g)["low"] == pytest.approx(gru.low, abs=1e-12)
    for fig in ("validation-curves", "accuracy-cost", "gru-lstm", "data-fraction", "imbalance"):
        assert (tmp_path / "liu-survey" / "figures" / f"synthetic-test-{fig}.png").stat().st_size > 10_000
    trends = collect_trends(tmp_path, "test")     # what the summary pools across datasets: this report's points, one dataset
    assert len(trends) == 4 and set(trends.dataset) == {"synthetic"} and pooled_trend(trends) is None
    assert "One dataset in this profile" in "\n".join(trend_markdown(trends))


def test_ncf_control_chapter_report_on_synthetic_data(tmp_path, no_summary):
    """The positive control on files in the authors' format: our networks, the authors' code (Keras 3) and the baselines on the same
    candidates, the decision by the registered margin, the attribution, and the published numbers beside, undecided off their data."""
    assert R.main(["--profile", "test", "--chapter", "ncf-control", "--reports", str(tmp_path), "--device", "cpu", *ONE_PROCESS]) == 0
    r = Report.load(tmp_path / "ncf-control" / "synthetic-test.metrics.json")
    table = r.table("table")
    assert list(table.index) == ["GMF", "MLP", "NeuMF", "NeuMF (pretrained)", "NeuMF (pretrained, SGD)", "popularity", "ease",
                                 "NeuMF · authors' code"]
    assert ((table["HR@10 low"] <= table["HR@10"]) & (table["HR@10"] <= table["HR@10 high"])).all()
    # the last epoch of each network's test curve, ours and the reference's, is the number the table reports
    for name, h in r.results["histories"]["seed 0"].items():
        assert h["test_HR@10"][-1] == pytest.approx(table.loc[name, "HR@10"]) and len(h["epoch"]) == 2
    decision = r.table("decision")
    assert list(decision.index) == ["NeuMF"] and decision.loc["NeuMF", "margin"] == 0.03
    assert decision.loc["NeuMF", "difference"] == pytest.approx(table.loc["NeuMF", "HR@10"] - table.loc["NeuMF · authors' code", "HR@10"])
    assert r.results["control"].startswith(("passes", "fails", "is inconclusive"))
    assert table.loc["NeuMF (pretrained, SGD)", "He et al. 2017 HR@10"] == 0.726 and table.loc["ease", "Dacrema et al. 2019 HR@10"] == 0.7192
    assert [(c.model, c.metric) for c in r.claims] == [(c.model, c.metric) for c in claims_for("ncf-control")]
    measured = [c for c in r.claims if c.model in table.index]
    assert measured and all(c.low <= c.ours <= c.high and c.n == r.results["split"]["users"] for c in measured)
    assert all(c.verdict == "not applicable" and c.where == "substitute" for c in measured)   # synthetic stand-ins of the authors' files
    assert all(c.verdict == "not measured" for c in r.claims if c.model not in table.index)   # the test profile has no iALS etc.
    att = r.table("attribution")
    for model, g in att.groupby("model"):   # five settings, each one factor from the last; the steps add up to the whole move
        assert len(g) == 5 and g["step"].iloc[1:].sum() == pytest.approx(g["HR@10"].iloc[-1] - g["HR@10"].iloc[0])
    assert {row["versus"] for row in r.results["comparisons"]} == set(table.index) - {"NeuMF"}
    for fig in ("training", "control", "attribution"):
        assert (tmp_path / "ncf-control" / "figures" / f"synthetic-test-{fig}.png").stat().st_size > 10_000
    assert_clean_report(tmp_path / "ncf-control" / "synthetic-test.ipynb", "ncf-control")
    assert_recomputed(tmp_path, "ncf-control")
