"""Task lists on a Dask cluster (`tasks.run_groups(scheduler=...)`, `reproduce --scheduler`): the same numbers as the local pool,
a worker that dies mid-task, a scheduler that does not answer (issue 39)."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pandas as pd
import pytest

distributed = pytest.importorskip("distributed", reason="Dask distributed is the optional group .[cluster]; .ci/run installs it")
pytestmark = pytest.mark.xdist_group("cluster")   # under `pytest -n`, one worker runs them all: one cluster, started once

from movierec_nb import reproduce as R  # noqa: E402
from movierec_nb import tasks as T  # noqa: E402

from movierec_nb.bench import TIMED  # noqa: E402  (a bench row's fields that are the machine's, not the numbers')


@pytest.fixture(scope="module")
def cluster():
    "A local cluster of 2 worker processes, one thread each (what `dask worker --nthreads 1` starts on a machine)."
    import cloudpickle
    cloudpickle.register_pickle_by_value(sys.modules[__name__])    # the workers receive this module's helpers by value
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as c:
        yield c.scheduler_address


def _numbers(result: dict) -> tuple[dict, pd.DataFrame]:
    "A bench result without what the machine decides (times, memory)."
    return {k: v for k, v in result["row"].items() if k not in TIMED}, result["per_user"]


def test_a_chapter_task_list_gives_the_local_pool_numbers_on_a_cluster(cluster, tmp_path):
    "The survey bench's tasks (a neighbourhood model, popularity, a GRU) on 2 Dask workers and in the local pool: identical numbers."
    from movierec_nb.data import load_chapter_data
    from movierec_nb.models.liu_survey import LiuSettings, bench_model
    data = load_chapter_data("synthetic", like="ml-100k", shape=(120, 500, 8000))
    shared = {"ratings": data.ratings, "items": data.items, "options": LiuSettings.for_profile("test").to_dict()}
    tasks = {m: dict(name=m, frac=1.0, seed=0) for m in ("GRU", "item KNN cosine (top-N)", "popularity")}
    local = T.run_tasks(bench_model, tasks, shared, processes=2, progress=False)
    remote = T.run_tasks(bench_model, tasks, shared, cache=tmp_path, progress=False, scheduler=cluster)
    assert remote.retried == [] and remote.cached == [] and len(list(tmp_path.glob("*.pkl"))) == 3   # the driver wrote the cache
    assert remote.cluster == cluster                                           # where they ran, for the report's header
    for m in tasks:
        (a, pa), (b, pb) = _numbers(local[m]), _numbers(remote[m])
        assert pd.Series(a).equals(pd.Series(b)), m                # NaN where both have none (a baseline has no epochs)
        pd.testing.assert_frame_equal(pa, pb)
    again = T.run_tasks(bench_model, tasks, shared, cache=tmp_path, progress=False, scheduler=cluster)
    assert again.cached == list(tasks)                              # resumed from the cache like a local run


def _die_once(marker: str, log: str, x: int) -> int:
    "x², after killing this worker's process on the first attempt of a task with a marker (each attempt is logged)."
    with open(log, "a") as f: f.write(f"{x}\n")
    if marker and not Path(marker).exists():
        Path(marker).write_text("died once")
        os._exit(1)
    return x * x


def test_a_worker_that_dies_mid_task_costs_one_retry_and_nothing_finished(cluster, tmp_path):
    "Two tasks finished and cached; a third kills its worker: it runs again elsewhere, the finished ones are read back, not recomputed."
    log, cache = str(tmp_path / "attempts.log"), tmp_path / "cache"
    first = T.run_tasks(_die_once, {"b": dict(x=3), "c": dict(x=4)}, {"marker": "", "log": log}, cache=cache, progress=False, scheduler=cluster)
    assert dict(first) == {"b": 9, "c": 16}
    shared = {"marker": str(tmp_path / "died"), "log": log}
    tasks = {"a": dict(x=2), "b": dict(x=3), "c": dict(x=4)}
    results = T.run_tasks(_die_once, tasks, {**shared, "marker": ""}, cache=cache, progress=False, scheduler=cluster)   # b, c read back
    assert results.cached == ["b", "c"] and results["a"] == 4
    more = T.run_tasks(_die_once, {"d": dict(x=5)}, shared, cache=cache, progress=False, scheduler=cluster)
    assert dict(more) == {"d": 25} and more.retried == ["d"]                  # the worker died under d: run again, once
    assert more.cluster == cluster
    attempts = Path(log).read_text().split()
    assert attempts.count("5") == 2 and attempts.count("3") == attempts.count("4") == 1 and attempts.count("2") == 1


def test_an_unreachable_scheduler_stops_reproduce_before_any_work(tmp_path, monkeypatch, capsys):
    "`reproduce --scheduler` with nothing listening: one clear error, no report, no kernel started."
    monkeypatch.setattr(T, "CONNECT_TIMEOUT", 2.0)
    with pytest.raises(ConnectionError, match=r"no Dask scheduler answers at 'tcp://127.0.0.1:9' within 2 s.*dask scheduler"):
        R.main(["--profile", "test", "--paper", "data", "--reports", str(tmp_path), "--scheduler", "tcp://127.0.0.1:9"])
    assert not list(tmp_path.rglob("*.ipynb"))
    assert T.SCHEDULER_ENV not in os.environ

