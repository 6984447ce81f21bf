"""End-to-end: chapters run through papermill into reports; the reproduce and bench commands; README sync."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from movierec_nb import reproduce as R
from movierec_nb.report import Report
from conftest import assert_clean_report, drop_summary

ROOT = Path(__file__).resolve().parents[1]


def test_data_chapter_report_in_test_profile(tmp_path):
    assert R.main(["--profile", "test", "--chapter", "data", "--reports", str(tmp_path)]) == 0
    report = tmp_path / "data" / "synthetic-test.ipynb"
    assert report.exists() and not list(tmp_path.rglob("*.partial*")) and not list(tmp_path.rglob("*.lock"))
    r = Report.load(tmp_path / "data" / "synthetic-test.metrics.json")
    assert r.results["summary"]["ratings"] == 20_000 and r.results["summary"]["users"] == 300
    assert sum(r.results["ratings_by_value"].values()) == 20_000
    man = r.manifest
    assert man["params"]["profile"] == "test" and man["finished"] and man["packages"]["pandas"] and man["threads"] == 1
    assert man["data"][0]["verified"] is True and "synthetic" in man["data"][0]["origin"]
    assert set(man["git"]) >= {"commit", "dirty"}
    assert (tmp_path / "data" / "figures" / "synthetic-test-overview.png").stat().st_size > 10_000
    assert_clean_report(report, "data")
    assert "<img" in report.with_suffix(".html").read_text()         # the HTML copy embeds the figures
    summary = Report.load(tmp_path / "summary" / "all-test.metrics.json")   # the summary ran after it, as a chapter
    from movierec_nb.core import file_digest
    assert summary.results["inputs"] == {"data/synthetic-test.metrics.json": file_digest(tmp_path / "data" / "synthetic-test.metrics.json")}


def test_quick_profile_on_real_data(real_root, tmp_path, no_summary):
    assert R.main(["--profile", "quick", "--chapter", "data", "--dataset", "ml-latest-small", "--dataset", "ml-1m-partial",
                   "--reports", str(tmp_path), "--data-dir", str(real_root)]) == 0
    got = {p.name for p in (tmp_path / "data").glob("*.metrics.json")}
    assert got == {"ml-latest-small-quick.metrics.json", "ml-1m-partial-quick.metrics.json"}
    small = Report.load(tmp_path / "data" / "ml-latest-small-quick.metrics.json")
    assert small.results["summary"]["ratings"] == 100_836 and small.manifest["warnings"] == []
    half = Report.load(tmp_path / "data" / "ml-1m-partial-quick.metrics.json")
    assert half.results["summary"]["ratings"] == 487_650 and half.results["summary"]["verified"] is True    # a subset by rule, verified
    assert half.manifest["warnings"] == []
    assert_clean_report(tmp_path / "data" / "ml-1m-partial-quick.ipynb", "data")
    nb = json.loads((tmp_path / "data" / "ml-1m-partial-quick.ipynb").read_text())
    assert "Caveat" not in "".join(nb["cells"][1]["source"])
    assert nb["metadata"]["papermill"]["parameters"]["path"] == "ml-1m-partial"        # a folder under the data root, not a machine's path


def test_missing_data_stops_or_keeps_going(tmp_path, capsys):
    empty = tmp_path / "nodata"
    empty.mkdir()
    assert R.main(["--profile", "quick", "--reports", str(tmp_path / "r"), "--data-dir", str(empty), "--no-download"]) == 2
    err = capsys.readouterr().err
    assert f"missing data for data/ml-100k: {empty / 'ml-100k'} (download it from https://files.grouplens.org/datasets/movielens/ml-100k.zip)" in err
    assert f"{empty / 'ml-1m-partial'} (ml-1m-partial is the lines of users 1-2999 of ml-1m's ratings.dat" in err and "--keep-going" in err
    assert "download https://files.grouplens.org/datasets/movielens/ml-1m.zip" in err     # the rule, and where its source comes from
    assert R.main(["--profile", "quick", "--reports", str(tmp_path / "r"), "--data-dir", str(empty), "--keep-going",
                   "--no-download", "--chapter", "data", "--chapter", "wang-ncf"]) == 2    # --keep-going, but nothing could run
    out, err = capsys.readouterr()
    assert "skipped (missing data): data/ml-100k, data/ml-latest-small, data/ml-1m-partial" in out
    assert "wang-ncf/ml-1m-partial" in out and "nothing ran: every selected run misses its data" in err
    assert sorted(p.name for p in empty.iterdir()) == []                # and nothing was created in the data folder


def test_failed_chapter_keeps_partial_output_and_no_report(tmp_path, tiny_chapter):
    run = R.Run("data", tiny_chapter, "broken", {"dataset": "ml-10k"})
    with pytest.raises(R.ChapterFailed, match=r"tiny.ipynb \(broken, test\) failed in cell .*unknown dataset 'ml-10k'"):
        R.execute(run, "test", tmp_path)
    assert (tmp_path / "data" / "broken-test.failed.ipynb").exists()
    assert not (tmp_path / "data" / "broken-test.ipynb").exists()


def test_unknown_chapter_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="chapters: aam-hybrid, baselines, data, kanyuch-deepcf, liu-survey, ncf-control, summary, wang-ncf, zeng-embedding"):
        R.main(["--profile", "test", "--chapter", "nope", "--reports", str(tmp_path)])


def test_readme_is_generated_from_index():
    from movierec_nb.readme import render_readme
    assert (ROOT / "README.md").read_text(encoding="utf-8") == render_readme(), "README.md is stale: run `make readme`"


def test_bench_command_runs_small(tmp_path):
    out = tmp_path / "bench.json"
    p = subprocess.run([sys.executable, "-m", "movierec_nb.bench", "--only", "data-load", "--ratings", "100000",
                        "--json", str(out)], capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr
    rows = json.loads(out.read_text())["results"]
    assert any(r["measure"].startswith("cold load") and r["value"] > 0 for r in rows)
    assert "cached load" in p.stdout


def test_bench_rejects_unknown_name():
    from movierec_nb.bench import run_benchmarks
    with pytest.raises(ValueError, match="valid: data-load"):
        run_benchmarks(["nope"])


def test_unknown_device_fails_before_running(tmp_path):
    with pytest.raises(ValueError, match="valid: auto, cpu, cuda, mps"):
        R.main(["--profile", "test", "--paper", "wang-ncf", "--device", "gpu", "--reports", str(tmp_path)])
    assert not (tmp_path / "wang-ncf").exists()


def test_every_planned_parameter_is_a_notebook_parameter():
    "papermill must parse each chapter's parameters cell fully; a typo in a plan would otherwise pass silently."
    import papermill as pm
    for profile in R.PROFILES:
        for run in R.plan(profile):
            declared = set(pm.inspect_notebook(str(ROOT / "nbs" / run.notebook)))
            injected = {"profile", "report_dir"} | ({"reports"} if run.reads_reports else {"data_dir"})
            assert set(run.params) | injected <= declared, (run.notebook, set(run.params) | injected - declared)


def test_skip_when_up_to_date_then_force(tmp_path, capsys, monkeypatch, tiny_chapter):
    monkeypatch.setattr(R, "plan", lambda profile: [R.Run("data", tiny_chapter, "synthetic", {"dataset": "synthetic"}), R.SUMMARY_RUN])
    def _data_run(reports, *extra): return R.main(["--profile", "test", "--chapter", "data", "--reports", str(reports), *extra])
    assert _data_run(tmp_path) == 0
    report = tmp_path / "data" / "synthetic-test.ipynb"
    html, stamp = report.with_suffix(".html"), report.with_suffix(".stamp.json")
    assert report.exists() and html.stat().st_size > 50_000 and stamp.exists()
    assert (tmp_path / "SUMMARY-test.md").exists()
    assert "<title>data · synthetic · test</title>" in html.read_text()
    first = report.stat().st_mtime_ns
    capsys.readouterr()
    assert _data_run(tmp_path) == 0
    out = capsys.readouterr().out
    assert "up to date (skipped; --force reruns): data/synthetic" in out and "up to date (skipped; --force reruns): summary/all" in out
    assert report.stat().st_mtime_ns == first
    drop_summary(monkeypatch)   # from here on, without the summary (one kernel less per call)
    assert _data_run(tmp_path, "--force") == 0
    assert report.stat().st_mtime_ns > first
    # a changed input (here: the recorded code fingerprint) makes the report stale again
    st = json.loads(stamp.read_text()); st["code"] = "0" * 64; stamp.write_text(json.dumps(st))
    second = report.stat().st_mtime_ns
    assert _data_run(tmp_path) == 0 and report.stat().st_mtime_ns > second


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_failing_chapter_stops_with_its_name_and_cell(tmp_path, capfd, monkeypatch, jobs, tiny_chapter):
    broken = R.Run("data", tiny_chapter, "broken", {"dataset": "ml-10k"})
    monkeypatch.setattr(R, "plan", lambda profile: [broken, R.SUMMARY_RUN])
    assert R.main(["--profile", "test", "--reports", str(tmp_path), "--jobs", jobs]) == 1
    err = capfd.readouterr().err
    assert f"FAILED data/broken: {tiny_chapter} (broken, test) failed in cell" in err and "unknown dataset 'ml-10k'" in err
    assert (tmp_path / "data" / "broken-test.failed.ipynb").exists() and not (tmp_path / "data" / "broken-test.ipynb").exists()
    assert not (tmp_path / "SUMMARY-test.md").exists()     # no summary from an incomplete set


def _fake_chapter(fail: bool, label: str = "synthetic"):
    "A stand-in for papermill: saves a report and a figure into report_dir, then fails or succeeds."
    import nbformat
    import papermill as pm
    def execute_notebook(nb, out, parameters, **kw):
        stage = Path(kw["cwd"]) / parameters["report_dir"]          # injected relative to the kernel's folder, nbs/
        (stage / "figures").mkdir(parents=True, exist_ok=True)
        Report("data", label, "test", results={"hr": "new"}).save(stage / f"{label}-test.metrics.json")
        (stage / "figures" / f"{label}-test-results.png").write_text("new figure")
        nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# title")]), out)
        if fail: raise pm.PapermillExecutionError(7, 7, "assert False", "AssertionError", "late check", [])
    return execute_notebook


def test_failure_after_saving_metrics_keeps_the_previous_ones(tmp_path, monkeypatch):
    import papermill as pm
    folder = tmp_path / "data"
    (folder / "figures").mkdir(parents=True)
    Report("data", "synthetic", "test", results={"hr": "old"}).save(folder / "synthetic-test.metrics.json")
    (folder / "figures" / "synthetic-test-results.png").write_text("old figure")
    run = R.Run("data", "01_data.ipynb", "synthetic", {"dataset": "synthetic"})
    monkeypatch.setattr(pm, "execute_notebook", _fake_chapter(fail=True))
    with pytest.raises(R.ChapterFailed, match="failed in cell 7: AssertionError: late check"):
        R.execute(run, "test", tmp_path)
    assert Report.load(folder / "synthetic-test.metrics.json").results == {"hr": "old"}
    assert (folder / "figures" / "synthetic-test-results.png").read_text() == "old figure"
    assert Report.load(folder / "synthetic-test.failed" / "synthetic-test.metrics.json").results == {"hr": "new"}
    assert not list(folder.glob("*.partial*")) and not list(folder.glob("*.lock"))
    monkeypatch.setattr(pm, "execute_notebook", _fake_chapter(fail=False))
    monkeypatch.setattr(R, "export_html", lambda nb: nb.with_suffix(".html"))
    assert R.execute(run, "test", tmp_path) == folder / "synthetic-test.ipynb"
    assert Report.load(folder / "synthetic-test.metrics.json").results == {"hr": "new"}
    assert (folder / "figures" / "synthetic-test-results.png").read_text() == "new figure"
    assert not list(folder.glob("*.partial*")) and not list(folder.glob("*.lock"))
    nb = json.loads((folder / "synthetic-test.ipynb").read_text())
    assert "**data · synthetic · test profile**" in "".join(nb["cells"][1]["source"])   # the header, from the saved report
    assert nb["metadata"]["papermill"]["input_path"] == "nbs/01_data.ipynb" and nb["metadata"]["title"] == "data · synthetic · test"


def test_a_report_named_otherwise_than_planned_is_a_failure(tmp_path, monkeypatch):
    import papermill as pm
    run = R.Run("data", "01_data.ipynb", "ml-100k", {"dataset": "ml-100k"})
    monkeypatch.setattr(pm, "execute_notebook", _fake_chapter(fail=False, label="ml-1m"))
    with pytest.raises(R.ChapterFailed, match=r"saved no report ml-100k-test.metrics.json \(saved: \['ml-1m-test.metrics.json'\]\)"):
        R.execute(run, "test", tmp_path)
    assert not (tmp_path / "data" / "ml-100k-test.ipynb").exists() and (tmp_path / "data" / "ml-100k-test.failed.ipynb").exists()


def _wait_for(paths: list[Path], proc: subprocess.Popen, timeout: float = 120) -> None:
    "Wait until every file of `paths` exists (a chapter writes its `ready` file from inside its kernel), or fail if `proc` ends first."
    import time
    deadline = time.time() + timeout
    while not all(p.exists() for p in paths):
        assert proc.poll() is None, f"the run ended before every chapter was ready: {proc.communicate()[0]}"
        assert time.time() < deadline, f"not ready after {timeout} s: {[str(p) for p in paths if not p.exists()]}"
        time.sleep(0.1)


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM", "SIGKILL"])
def test_interrupted_run_leaves_the_previous_report_intact(tmp_path, sig, tiny_chapter):
    "A signal while a chapter's kernel is running (it says so by writing its `ready` file): the previous report stays as it was."
    import os, signal
    report = tmp_path / "data" / "synthetic-test.ipynb"
    report.parent.mkdir(parents=True)
    report.write_text("previous good report")
    ready = tmp_path / "ready"
    run = f"R.Run('data', {tiny_chapter!r}, 'synthetic', {{'dataset': 'synthetic', 'sleep': 60, 'ready': {str(ready)!r}}})"
    code = (f"import sys; from movierec_nb import reproduce as R\nR.plan = lambda profile: [{run}, R.SUMMARY_RUN]\n"
            f"sys.exit(R.cli(['--profile', 'test', '--reports', {str(tmp_path)!r}]))")
    p = subprocess.Popen([sys.executable, "-c", code], start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    _wait_for([ready], p)
    partial = next(iter(report.parent.glob("*.partial-*.ipynb")), None)
    assert partial is not None, "the kernel runs, so its output is being written"
    os.killpg(p.pid, getattr(signal, sig))
    p.wait(timeout=120)
    assert p.returncode != 0
    assert report.read_text() == "previous good report"
    assert not report.with_suffix(".stamp.json").exists()
    if sig != "SIGKILL":   # Ctrl-C and SIGTERM move the partial output aside; SIGKILL cannot be caught
        assert not partial.exists() and report.with_suffix(".failed.ipynb").exists()


def test_jobs_must_be_positive(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        R.main(["--profile", "test", "--jobs", "0", "--reports", str(tmp_path)])
    assert e.value.code == 2 and "--jobs must be >= 1, got 0" in capsys.readouterr().err


def test_jobs_run_chapters_in_parallel_processes(tmp_path, capfd, monkeypatch, tiny_chapter):
    runs = [R.Run("data", tiny_chapter, "synthetic", {"dataset": "synthetic"}),
            R.Run("data", tiny_chapter, "synthetic-copy", {"dataset": "folder", "path": "synthetic-copy"})]   # labelled by its folder
    monkeypatch.setattr(R, "plan", lambda profile: [*runs, R.SUMMARY_RUN])
    assert R.main(["--profile", "test", "--reports", str(tmp_path), "--jobs", "2"]) == 0
    out = capfd.readouterr().out
    assert out.count("(test) started") == 3 and "3 run(s)" in out         # the two chapters side by side, then the summary
    for label in ("synthetic", "synthetic-copy"):
        report = tmp_path / "data" / f"{label}-test.ipynb"
        assert report.exists() and report.with_suffix(".html").exists() and report.with_suffix(".stamp.json").exists()


@pytest.mark.parametrize("args,match", [
    (["--paper", "aam-hybrid", "--set", "epoch=3"], r"--set epoch: no selected chapter has a parameter 'epoch' \(13_aam_hybrid: "),
    (["--paper", "data", "--set", "epochs=3"], r"--set epochs: no selected chapter has a parameter 'epochs' \(01_data: data_dir"),
    (["--paper", "wang-ncf", "--set", "epochs=abc"], r"wang-ncf/synthetic: setting 'epochs' must be an integer, got 'abc'"),
    (["--paper", "aam-hybrid", "--set", "seeds=[0,1"], r"--set seeds: '\[0,1' is not valid JSON"),
    (["--paper", "kanyuch-deepcf", "--set", "split_scope=per-item"], r"unknown split reading 'per-item'"),
])
def test_parameters_are_checked_before_any_kernel(tmp_path, args, match):
    with pytest.raises(ValueError, match=match):
        R.main(["--profile", "test", "--reports", str(tmp_path), *args])
    assert not list(tmp_path.iterdir())                             # no kernel started, nothing written


def test_command_line_errors_are_one_line(tmp_path, capsys):
    assert R.cli(["--profile", "test", "--paper", "wang-ncf", "--device", "gpu", "--reports", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip().splitlines() == ["error: unknown device 'gpu'; valid: auto, cpu, cuda, mps (or 'cuda:N')"]
    blocked = tmp_path / "a-file"; blocked.write_text("")
    assert R.cli(["--profile", "test", "--paper", "data", "--reports", str(blocked / "reports")]) == 2
    assert capsys.readouterr().err.startswith(f"error: cannot write reports to {blocked / 'reports'}")
    with pytest.raises(ValueError, match="unknown device 'gpu'"):    # --verbose: the traceback, for debugging
        R.cli(["--profile", "test", "--paper", "wang-ncf", "--device", "gpu", "--reports", str(tmp_path), "--verbose"])


def test_a_second_run_of_a_report_fails_fast_with_the_lock_message(tmp_path, tiny_chapter, monkeypatch, capsys):
    import time
    slow = R.Run("data", tiny_chapter, "synthetic", {"dataset": "synthetic", "sleep": 30})
    code = (f"from pathlib import Path; from movierec_nb import reproduce as R\nR._interrupt_on_signals()\n"
            f"R.execute(R.Run('data', {tiny_chapter!r}, 'synthetic', {{'dataset': 'synthetic', 'sleep': 30}}), 'test', Path({str(tmp_path)!r}))")
    first = subprocess.Popen([sys.executable, "-c", code])
    lock = slow.report(tmp_path, "test").with_suffix(".lock")
    try:
        deadline = time.time() + 60
        while not lock.exists() and time.time() < deadline: time.sleep(0.1)
        assert lock.exists(), "the first run never took its lock"
        monkeypatch.setattr(R, "plan", lambda profile: [slow])
        started = []
        monkeypatch.setattr(R, "_papermill", lambda *a, **k: started.append(a))
        assert R.cli(["--profile", "test", "--reports", str(tmp_path)]) == 2
        assert started == []                                          # refused before any kernel was started
        assert f"error: another run (pid {first.pid} on" in capsys.readouterr().err
    finally:
        first.terminate(); first.wait(timeout=60)       # it stops its kernel and sets its output aside


def test_sigterm_under_jobs_2_stops_every_chapter_and_replaces_no_report(tmp_path, tiny_chapter):
    "SIGTERM to the command (not its process group) reaches both running chapters: they stop, and no report is replaced."
    import signal
    for label in ("a", "b"):
        (tmp_path / "data").mkdir(exist_ok=True)
        (tmp_path / "data" / f"{label}-test.ipynb").write_text(f"previous report {label}")
    ready = [tmp_path / f"ready-{label}" for label in "ab"]
    runs = ", ".join(f"R.Run('data', {tiny_chapter!r}, {label!r}, {{'dataset': 'folder', 'path': {label!r}, 'sleep': 60, "
                     f"'ready': {str(tmp_path / f'ready-{label}')!r}}})" for label in "ab")
    code = (f"import sys; from movierec_nb import reproduce as R\nR.plan = lambda profile: [{runs}, R.SUMMARY_RUN]\n"
            f"sys.exit(R.cli(['--profile', 'test', '--jobs', '2', '--reports', {str(tmp_path)!r}]))")
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    _wait_for(ready, p)                                               # both kernels are inside their chapters
    assert len(list((tmp_path / "data").glob("*.partial-*.ipynb"))) == 2, "both chapters should be running"
    p.send_signal(signal.SIGTERM)
    out, _ = p.communicate(timeout=120)
    assert p.returncode == 130, out
    assert "interrupted: stopped data/a, data/b" in out or "interrupted: stopped data/b, data/a" in out, out
    for label in ("a", "b"):
        assert (tmp_path / "data" / f"{label}-test.ipynb").read_text() == f"previous report {label}"
        assert (tmp_path / "data" / f"{label}-test.failed.ipynb").exists() and not (tmp_path / "data" / f"{label}-test.stamp.json").exists()
    assert not list((tmp_path / "data").glob("*.partial-*")) and not list((tmp_path / "data").glob("*.lock"))
    assert not (tmp_path / "SUMMARY-test.md").exists()


def test_committed_reports_hold_no_absolute_path_of_the_machine_that_made_them():
    "Report notebooks, their HTML, metrics, stamps and summaries name files relative to the repository or the data folder."
    import re
    pattern = re.compile(r"(?<![\w.:/~>-])/(?:work|home|root|tmp|Users|mnt|srv|var/folders|private)/")
    found = []
    for f in sorted((ROOT / "reports").rglob("*")):
        if f.suffix not in (".ipynb", ".html", ".json", ".md") or not f.is_file(): continue
        text = f.read_text(encoding="utf-8", errors="replace")
        found += [f"{f.relative_to(ROOT)}: {m.group(0)}…" for m in pattern.finditer(text)][:1]
        if str(ROOT) in text: found.append(f"{f.relative_to(ROOT)}: {ROOT}")
    assert not found, found[:10]


def test_a_signal_during_the_final_moves_is_held_then_raised():
    "signals_deferred holds Ctrl-C whichever thread receives it, raises it after the block and restores the handler."
    import os, signal, threading, time
    from movierec_nb.reproduce import signals_deferred
    threading.Thread(target=time.sleep, args=(2,), daemon=True).start()   # another thread the signal could go to
    moved = False
    with pytest.raises(KeyboardInterrupt):
        with signals_deferred():
            os.kill(os.getpid(), signal.SIGINT); time.sleep(0.2); moved = True
    assert moved and signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_main_leaves_the_environment_as_it_found_it(tmp_path, monkeypatch, tiny_chapter):
    "--data-dir and --threads reach the kernels through the environment, and are taken back when the command returns."
    import os
    from movierec_nb.core import THREAD_VARS
    monkeypatch.setattr(R, "plan", lambda profile: [R.Run("data", tiny_chapter, "synthetic", {"dataset": "synthetic"})])
    monkeypatch.delenv("MOVIEREC_THREADS", raising=False)
    before = {k: os.environ.get(k) for k in ("MOVIEREC_DATA_DIR", "MOVIEREC_THREADS", *THREAD_VARS)}
    assert R.main(["--profile", "test", "--reports", str(tmp_path), "--data-dir", str(tmp_path), "--threads", "2"]) == 0
    assert {k: os.environ.get(k) for k in before} == before
    assert Report.load(tmp_path / "data" / "synthetic-test.metrics.json").manifest["threads"] == 2   # the kernel had them


def test_plan_says_what_would_run_and_runs_nothing(tmp_path, monkeypatch, tiny_chapter, capsys):
    "--plan: each run's state (no report / up to date / which part changed) and last wall time, the total to expect; nothing runs."
    run = R.Run("data", tiny_chapter, "synthetic", {"dataset": "synthetic"})
    monkeypatch.setattr(R, "plan", lambda profile: [run, R.SUMMARY_RUN])
    args = ["--profile", "test", "--reports", str(tmp_path)]
    assert R.main([*args, "--plan"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "plan (test profile, --jobs 1): 2 run(s), 2 to run, 0 up to date, 0 missing data"
    assert out[1].split() == ["to", "run", "data/synthetic", "no", "report", "no", "earlier", "report"]
    assert "after the chapters (it reads their reports)" in out[2]
    assert out[3] == "expected: unknown (none of the 2 run(s) has an earlier report to go by)"
    assert not list(tmp_path.rglob("*.ipynb"))                                   # nothing ran
    assert R.main(args) == 0
    capsys.readouterr()
    assert R.main([*args, "--plan"]) == 0
    out = capsys.readouterr().out.splitlines()
    took = Report.load(tmp_path / "data" / "synthetic-test.metrics.json").manifest["duration_s"]
    assert out[0].endswith("0 to run, 2 up to date, 0 missing data") and out[1].split()[:4] == ["up", "to", "date", "data/synthetic"]
    assert out[1].endswith(f"last {took:,.0f} s") and len(out) == 3                 # nothing to run: no total
    monkeypatch.setattr(R, "plan", lambda profile: [R.Run("data", tiny_chapter, "synthetic", {"dataset": "synthetic", "seed": 1}),
                                                    R.SUMMARY_RUN])
    assert R.main([*args, "--plan"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "changed: parameters" in out[1] and "after the chapters" in out[2]
    assert out[3].startswith("expected: ") and "of jobs from the last reports of 2 run(s)" in out[3]   # the chapter's and the summary's


def _own_chapter(tmp_path, tiny_chapter) -> Path:
    "A copy of the tiny chapter that a test may edit."
    import shutil
    path = tmp_path / "chapter" / "tiny.ipynb"
    path.parent.mkdir()
    shutil.copy(tiny_chapter, path)
    return path


def _edit(path: Path, cell: int, change) -> None:
    import nbformat
    nb = nbformat.read(path, as_version=4)
    nb.cells[cell].source = change(nb.cells[cell].source)
    nbformat.write(nb, path)


def test_freshness_follows_the_code_not_the_prose(tmp_path, tiny_chapter, monkeypatch, capsys):
    "A markdown edit re-renders the report without running it; a comment edit leaves it up to date; a code edit makes it stale."
    import nbformat
    chapter = _own_chapter(tmp_path, tiny_chapter)
    monkeypatch.setattr(R, "plan", lambda profile: [R.Run("data", str(chapter), "synthetic", {"dataset": "synthetic"})])
    reports = tmp_path / "reports"
    args = ["--profile", "test", "--reports", str(reports)]
    assert R.main(args) == 0
    report = reports / "data" / "synthetic-test.ipynb"
    before = (reports / "data" / "synthetic-test.metrics.json").read_text()
    _edit(chapter, 0, lambda s: s + " (reworded)")                       # the title: markdown only
    ran = []
    monkeypatch.setattr(R, "_papermill", lambda *a, **k: ran.append(a))
    capsys.readouterr()
    assert R.main([*args, "--plan"]) == 0 and "prose only (re-rendered, not run)" in capsys.readouterr().out
    assert R.main([*args, "--check"]) == 1 and "not up to date: data/synthetic" in capsys.readouterr().err   # old prose fails CI's check
    assert R.main(args) == 0
    assert ran == [] and "only its prose changed: re-rendered from the chapter, numbers kept (not run)" in capsys.readouterr().out
    assert nbformat.read(report, as_version=4).cells[0].source.endswith("(reworded)") and "(reworded)" in report.with_suffix(".html").read_text()
    assert (reports / "data" / "synthetic-test.metrics.json").read_text() == before
    _edit(chapter, 2, lambda s: s + "  # a comment changes nothing")
    assert R.main([*args, "--plan"]) == 0 and "0 to run, 1 up to date" in capsys.readouterr().out
    _edit(chapter, 2, lambda s: s + "\nextra = 1")
    assert R.main([*args, "--plan"]) == 0 and "changed: code" in capsys.readouterr().out


def test_restamp_carries_a_stamp_over_only_for_the_same_code(tmp_path, tiny_chapter, monkeypatch, capsys):
    "A stamp of an earlier kind is carried over when the code at the report's commit is the working tree's, and not otherwise."
    chapter = _own_chapter(tmp_path, tiny_chapter)
    run = R.Run("data", str(chapter), "synthetic", {"dataset": "synthetic"})
    monkeypatch.setattr(R, "plan", lambda profile: [run])
    reports = tmp_path / "reports"
    assert R.main(["--profile", "test", "--reports", str(reports)]) == 0
    metrics, stamp = reports / "data" / "synthetic-test.metrics.json", R.stamp_path(run, reports, "test")
    m = json.loads(metrics.read_text()); m["manifest"]["git"] = {"commit": "c0ffee", "dirty": False}; metrics.write_text(json.dumps(m))
    legacy = {k: v for k, v in json.loads(stamp.read_text()).items() if k != "prose"} | {"code": "an earlier fingerprint"}
    stamp.write_text(json.dumps(legacy))
    made = chapter.read_text()                                             # "the commit": the chapter as the report ran it
    monkeypatch.setattr(R, "_git_reader", lambda commit: lambda path: made if path == str(chapter) else R._working_tree(path))
    now = R.run_stamp(run, "test", None, reports)
    assert R.restamp(run, reports, "test", now) == "restamped (same code as its commit)" and json.loads(stamp.read_text()) == now
    stamp.write_text(json.dumps(legacy))
    _edit(chapter, 2, lambda s: s + "\nextra = 1")                        # the working tree's code moves on
    assert R.restamp(run, reports, "test", R.run_stamp(run, "test", None, reports)) == "stale: the code it executed has changed since"
    m["manifest"]["git"]["dirty"] = True; metrics.write_text(json.dumps(m))
    assert R.restamp(run, reports, "test", now).startswith("left as it is")


def test_check_fails_while_a_report_is_stale(tmp_path, tiny_chapter, monkeypatch, capsys):
    "--check: exit 0 when every report is up to date, 1 with the stale ones named (what CI runs instead of a rerun)."
    chapter = _own_chapter(tmp_path, tiny_chapter)
    monkeypatch.setattr(R, "plan", lambda profile: [R.Run("data", str(chapter), "synthetic", {"dataset": "synthetic"})])
    args = ["--profile", "test", "--reports", str(tmp_path / "reports")]
    assert R.main([*args, "--check"]) == 1 and "not up to date: data/synthetic" in capsys.readouterr().err
    assert R.main(args) == 0
    assert R.main([*args, "--check"]) == 0
    _edit(chapter, 2, lambda s: s + "\nextra = 1")
    assert R.main([*args, "--check"]) == 1 and "not up to date: data/synthetic" in capsys.readouterr().err


def test_added_and_removed_markdown_cells_rerender_without_a_run(tmp_path, tiny_chapter, monkeypatch, capsys):
    "A markdown cell added (and later removed) is prose: the report takes it in place, keeps its header, parameters and outputs."
    import nbformat
    chapter = _own_chapter(tmp_path, tiny_chapter)
    monkeypatch.setattr(R, "plan", lambda profile: [R.Run("data", str(chapter), "synthetic", {"dataset": "synthetic"})])
    reports, args = tmp_path / "reports", ["--profile", "test", "--reports", str(tmp_path / "reports")]
    assert R.main(args) == 0
    report = reports / "data" / "synthetic-test.ipynb"
    before = nbformat.read(report, as_version=4)
    nb = nbformat.read(chapter, as_version=4)
    nb.cells.insert(1, nbformat.v4.new_markdown_cell("**Learning goals.** new prose"))
    nb.cells.append(nbformat.v4.new_markdown_cell("## Exercises"))
    nbformat.write(nb, chapter)
    ran = []
    monkeypatch.setattr(R, "_papermill", lambda *a, **k: ran.append(a))
    assert R.main(args) == 0 and ran == []
    after = nbformat.read(report, as_version=4)
    kinds = lambda cells: [(c.cell_type, c.source[:20]) for c in cells]
    assert after.cells[0].source == before.cells[0].source and "| wall time |" in after.cells[1].source       # title, then the header
    assert after.cells[2].source == "**Learning goals.** new prose" and after.cells[-1].source == "## Exercises"
    assert kinds(after.cells[3:-1]) == kinds(before.cells[2:]) and [c.get("outputs") for c in after.cells if c.cell_type == "code"] == \
        [c.get("outputs") for c in before.cells if c.cell_type == "code"]
    nb.cells.pop(1); nbformat.write(nb, chapter)                                   # and removed again
    assert R.main(args) == 0 and ran == [] and all("new prose" not in c.source for c in nbformat.read(report, as_version=4).cells)
    assert "only its prose changed: re-rendered from the chapter, numbers kept (not run)" in capsys.readouterr().out
