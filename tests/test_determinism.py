"""The determinism rule the README states: OpenBLAS's kernel choice is what moves EASE and iALS between machines; `reproduce`
pins it where it can, and a chapter rerun under other kernels agrees with the pinned run by the rule (bitwise, EASE and iALS
within `KERNEL_TOLERANCE`)."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

import movierec_nb.reproduce as R

ARCH = "import threadpoolctl, numpy; print([i['architecture'] for i in threadpoolctl.threadpool_info() if i['internal_api'] == 'openblas'][0])"

# iALS on ml-100k's leave-one-out split, one thread: its sampled ranking metrics, as JSON
IALS = """
import json, sys
from threadpoolctl import threadpool_limits
from movierec_nb.baselines import make_model
from movierec_nb.data import load_movielens
from movierec_nb.metrics import SampledCandidates, evaluate
from movierec_nb.splits import LeaveOneOut, split
s = split(load_movielens("ml-100k", sys.argv[1]).ratings, LeaveOneOut(), seed=0)
with threadpool_limits(1): r = evaluate(make_model("ials", seed=0).fit(s), s, SampledCandidates(99, (10,), 0))
print(json.dumps({k: float(v) for k, v in r.items() if k in ("HR@10", "NDCG@10", "MRR")}))
"""


def _python(code: str, *args: str, env: dict[str, str] | None = None) -> str:
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout.strip().splitlines()[-1]


def test_reproduce_pins_the_blas_kernels_for_its_kernels(monkeypatch):
    monkeypatch.delenv("OPENBLAS_CORETYPE", raising=False)
    if not R.blas_pin(): pytest.skip("not an x86-64 CPU with AVX2 and FMA: OpenBLAS keeps its own choice here (the README's tolerance rule applies)")
    with R._environment(1, None):
        assert os.environ["OPENBLAS_CORETYPE"] == R.BLAS_KERNELS and _python(ARCH) == R.BLAS_KERNELS   # what a kernel loads
    assert "OPENBLAS_CORETYPE" not in os.environ                                                          # restored after
    monkeypatch.setenv("OPENBLAS_CORETYPE", "Sandybridge")                                                # the user's choice is kept
    assert R.blas_pin() == {}


def test_the_kernel_choice_is_what_moves_ials(real_root, monkeypatch):
    "The cause, measured: the same code, data and seed under two kernel sets gives iALS different ranking metrics, within the tolerance."
    monkeypatch.delenv("OPENBLAS_CORETYPE", raising=False)
    if not R.blas_pin(): pytest.skip("not an x86-64 CPU with AVX2 and FMA: the Haswell kernels cannot be loaded here")
    root = str(real_root)                                                               # the data root (its ml-100k folder)
    one, two, other = (json.loads(_python(IALS, root, env={"OPENBLAS_CORETYPE": core, "OPENBLAS_NUM_THREADS": "1"}))
                       for core in (R.BLAS_KERNELS, R.BLAS_KERNELS, "Sandybridge"))
    assert one == two                                                                    # the same kernels: bitwise
    assert one != other                                                                  # other kernels: other numbers
    assert all(abs(one[k] - other[k]) <= R.KERNEL_TOLERANCE["ials"] for k in one)        # within the stated tolerance


def test_a_chapter_rerun_under_other_kernels_follows_the_rule(tmp_path, no_summary, monkeypatch, capsys):
    "The baselines chapter (EASE, iALS, networks, Surprise) run with the pinned kernels and with Sandybridge's: `--compare` accepts it."
    monkeypatch.delenv("OPENBLAS_CORETYPE", raising=False)
    for name, core in (("pinned", None), ("other", "Sandybridge")):
        if core: monkeypatch.setenv("OPENBLAS_CORETYPE", core)
        # two folds of the rating bench: Surprise uses no BLAS, so its folds say nothing about the kernels and only cost time
        assert R.main(["--profile", "test", "--chapter", "baselines", "--reports", str(tmp_path / name), "--device", "cpu", "--set", "folds=2"]) == 0
    a, b = (tmp_path / n / "baselines" / "synthetic-test.metrics.json" for n in ("pinned", "other"))
    assert json.loads(b.read_text())["manifest"]["git"] == json.loads(a.read_text())["manifest"]["git"]
    capsys.readouterr()
    assert R.main(["--compare", str(a), str(b)]) == 0
    out = capsys.readouterr().out
    assert "break the rule" in out and " 0 break the rule" in out
    broken = json.loads(a.read_text())
    broken["results"]["ranking"]["synthetic"][0]["sampled HR@10"] = -1.0                       # a number no kernel gives
    b.write_text(json.dumps(broken))
    assert R.main(["--compare", str(a), str(b)]) == 1
