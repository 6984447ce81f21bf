"""The committed quick reports, checked as documents a reviewer would recompute: every measured claim's interval comes back
from the per-unit values stored beside its report (issue 35)."""
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
