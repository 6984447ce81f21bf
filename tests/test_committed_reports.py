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


def test_every_quick_finding_recomputes_from_its_units():
    "Each qualitative finding of the liu-survey quick reports with an interval: recomputed from `*.finding-units.parquet`, the same numbers."
    import numpy as np
    import pandas as pd
    from movierec_nb.models.liu_verdicts import FINDING_UNITS, recompute_finding
    from movierec_nb.report import Report
    files = sorted((REPORTS / "liu-survey").glob("*-quick.metrics.json"))
    assert len(files) == 2
    for p in files:
        findings = {f.claim: f for f in Report.load(p).findings if np.isfinite(f.low)}
        units = pd.read_parquet(p.with_name(p.name.removesuffix("metrics.json") + FINDING_UNITS))
        assert set(units.claim) == set(findings), p.name
        for claim, u in units.groupby("claim"):
            again, f = recompute_finding(u.method.iloc[0], u.x, u.y), findings[claim]
            assert np.allclose([again["value"], again["low"], again["high"]], [f.value, f.low, f.high], rtol=0, atol=1e-12), (p.name, claim)
