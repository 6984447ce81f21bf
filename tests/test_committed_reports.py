"""The committed quick reports, checked as documents a reviewer would recompute: every measured claim's interval, and every finding's,
comes back from the values stored beside its report (issue 35)."""
from __future__ import annotations

from pathlib import Path

REPORTS = Path(__file__).resolve().parents[1] / "reports"


def test_every_quick_interval_recomputes_from_its_per_unit_values():
    "Each measured numeric claim of the quick reports: its interval recomputed from `*.per-unit.parquet` equals the stored one."
    from movierec_nb.summary import recompute_claims
    t = recompute_claims(REPORTS, "quick")
    assert len(t) >= 50 and set(t.report.str.split("/").str[0]) >= {"zeng-embedding", "wang-ncf", "kanyuch-deepcf", "aam-hybrid",
                                                                      "ncf-control"}
    assert (t.status == "equal").all(), t[t.status != "equal"][["report", "model", "metric", "variant", "status"]].to_string()


def test_every_quick_finding_recomputes_from_its_units():
    "Each qualitative finding of the quick reports with an interval: recomputed from `*.finding-units.parquet`, the same numbers."
    from movierec_nb.summary import recompute_findings
    t = recompute_findings(REPORTS, "quick")
    assert set(t.report.str.split("/").str[0]) == {"wang-ncf", "kanyuch-deepcf", "aam-hybrid", "liu-survey"}, t.report.unique()
    assert (t.status == "equal").all(), t[t.status != "equal"][["report", "claim", "status"]].to_string()


def test_the_summarys_pooled_trend_recomputes_from_the_survey_reports():
    "The one interval SUMMARY.md computes itself (the survey's data trend pooled over datasets) comes back from the points the liu reports store."
    from movierec_nb.summary import collect_trends, pooled_trend
    t = pooled_trend(collect_trends(REPORTS, "quick"))
    assert t is not None
    line = f"pooled slope {t['value']:+.4f} per decade of training interactions [{t['low']:+.4f}, {t['high']:+.4f}]"
    assert line in (REPORTS / "SUMMARY.md").read_text(), line
