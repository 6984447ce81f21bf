"""Tuning studies in a storage: two worker processes share one study; an interrupted study resumes where it stopped."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from movierec_nb.tuning import TUNABLE, n_finished, open_study, trials_table

# a network study: each trial trains zeng's embedding MLP for a few epochs on the CLI's synthetic data (a second or two)
MODEL, STUDY = "zeng-embedding", "zeng-embedding-synthetic-seed0"


def _worker(storage: str, trials: int, worker: int = 0) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "movierec_nb.tuning", MODEL, "--trials", str(trials), "--storage", storage, "--max-epochs", "5",
                             "--worker", str(worker)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
                            env={**os.environ, "MOVIEREC_THREADS": "1"})


def _wait_for_tables(path, proc: subprocess.Popen, timeout: float = 120) -> None:
    "Wait (read-only) until the worker has created its storage's tables, so that this process opens an existing study."
    import sqlite3
    deadline = time.time() + timeout
    while True:
        assert proc.poll() is None and time.time() < deadline, proc.communicate()[0] if proc.poll() is not None else "no tables yet"
        if path.exists():
            try:
                with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
                    if db.execute("select count(*) from studies").fetchone()[0]: return
            except sqlite3.OperationalError: pass
        time.sleep(0.2)


def _study(storage: str):
    return open_study(STUDY, TUNABLE[MODEL].space, storage)


def test_two_workers_share_one_study(tmp_path):
    storage = f"sqlite:///{tmp_path / 'shared.db'}"
    workers = [_worker(storage, 6, k) for k in range(2)]
    outs = [w.communicate(timeout=600)[0] for w in workers]
    assert [w.returncode for w in workers] == [0, 0], outs
    table = trials_table(_study(storage))
    finished = table[table.state.isin(["COMPLETE", "PRUNED"])]
    # both workers ran trials of the one study, and together they stopped at the budget (a worker may start one last trial
    # while the other finishes the sixth: at most one trial over)
    assert finished.worker.nunique() == 2, table
    assert 6 <= len(finished) <= 7 and (table.state != "FAIL").all()
    # different worker numbers: different proposals (the same seed would make both samplers propose the same first trial)
    params = [c for c in table.columns if c.startswith("param ")]
    assert not table[params].iloc[:2].duplicated().any()


def test_interrupted_study_resumes(tmp_path):
    storage = f"sqlite:///{tmp_path / 'resume.db'}"
    w = _worker(storage, 10)
    _wait_for_tables(tmp_path / "resume.db", w)
    deadline = time.time() + 300
    while n_finished(_study(storage)) < 2:                     # let it finish two trials, then kill it mid-way
        assert w.poll() is None and time.time() < deadline, w.communicate()[0] if w.poll() is not None else "too slow"
        time.sleep(0.2)
    os.killpg(w.pid, signal.SIGKILL); w.wait()
    before = trials_table(_study(storage))
    done_before = before[before.state.isin(["COMPLETE", "PRUNED"])]
    assert 2 <= len(done_before) < 10
    again = _worker(storage, 10)
    out = again.communicate(timeout=600)[0]
    assert again.returncode == 0, out
    after = trials_table(_study(storage))
    done_after = after[after.state.isin(["COMPLETE", "PRUNED"])]
    # the finished trials of the first run are kept as they were; the rerun adds only what the budget misses
    assert len(done_after) in (10, 11) and set(done_before.index) <= set(done_after.index)
    cols = [c for c in after.columns if c.startswith("param ")] + ["value", "state"]
    assert after.loc[done_before.index, cols].equals(done_before[cols])
    assert (after.loc[after.index.difference(before.index), "worker"] != before.worker.iloc[0]).all()
    # a trial cut off by the kill stays RUNNING and is not counted
    assert set(after.state) <= {"COMPLETE", "PRUNED", "RUNNING"}


def test_bad_model_and_space_mismatch_are_clear(tmp_path, capsys):
    from movierec_nb.tuning import main
    assert main(["svd", "--storage", f"sqlite:///{tmp_path / 'x.db'}"]) == 2
    assert "unknown model 'svd'; tunable: ease" in capsys.readouterr().err
