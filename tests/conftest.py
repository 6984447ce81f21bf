"""Shared fixtures: an isolated cache per test session, real-data discovery, synthetic folders."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

# Property tests explore a fixed, seeded sequence of examples: a red CI run can be replayed exactly.
settings.register_profile("movierec", derandomize=True, deadline=None)
settings.load_profile("movierec")

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data" / "movielens"
SHARED_NCF = ROOT.parent / "shared" / "data" / "ncf"


def pytest_collection_modifyitems(config, items):
    "Every test that reads real data carries the `realdata` marker (`pytest -m 'not realdata'` leaves them out)."
    for item in items:
        if {"real_root", "ncf_dir"} & set(getattr(item, "fixturenames", ())): item.add_marker(pytest.mark.realdata)


def pytest_configure(config):
    """`--dist loadgroup` needs a pytest whose test ids pytest-xdist can mark with a group: on pytest 9.2 with pytest-xdist 3.8 the
    mark is silently lost (pytest-dev/pytest-xdist#1386), the group's tests spread over the workers and each builds the shared
    fixtures again (a minute of `make test`). Stop with the fix instead of running slower in silence."""
    from importlib.metadata import version
    from packaging.version import Version
    if config.getoption("dist", "no") == "loadgroup" and Version(pytest.__version__) >= Version("9.2") and Version(version("pytest-xdist")) <= Version("3.8.0"):
        raise pytest.UsageError(f"--dist loadgroup does not group tests with pytest {pytest.__version__} and pytest-xdist {version('pytest-xdist')} "
                                "(pytest-dev/pytest-xdist#1386): install 'pytest<9.2', as pyproject's dev group asks")


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory):
    "Parsed-frame cache and digest memo go to a temporary folder, never the user's cache."
    old = os.environ.get("MOVIEREC_CACHE_DIR")
    os.environ["MOVIEREC_CACHE_DIR"] = str(tmp_path_factory.mktemp("movierec-cache"))
    yield
    if old is None: os.environ.pop("MOVIEREC_CACHE_DIR", None)
    else: os.environ["MOVIEREC_CACHE_DIR"] = old


REAL_FILES = {"ml-100k": "u.data", "ml-latest-small": "ratings.csv", "ml-1m-partial": "ratings.dat", "ml-1m": "movies.dat"}
REQUIRE_REAL = "MOVIEREC_REQUIRE_REAL_DATA"   # set (as .ci/run does when the copies are there): a real-data skip fails the test


def _skip_or_fail(reason: str) -> None:
    "Skip with `reason`, or fail with it where real data is required."
    if os.environ.get(REQUIRE_REAL): pytest.fail(f"real data required (${REQUIRE_REAL} is set): {reason}")
    pytest.skip(reason)


def _real_root() -> tuple[Path | None, str]:
    "The folder of real copies and, when none is complete, what each candidate misses."
    why = []
    for cand in (os.environ.get("MOVIEREC_DATA_DIR"), SHARED_DATA):
        if not cand: continue
        missing = [f"{d}/{f}" for d, f in REAL_FILES.items() if not (Path(cand) / d / f).is_file()]
        if not missing: return Path(cand), ""
        why.append(f"{cand} lacks {', '.join(missing)}")
    return None, "; ".join(why) or "neither MOVIEREC_DATA_DIR nor ../shared/data/movielens is there"


@pytest.fixture(scope="session")
def real_root() -> Path:
    "Folder of real MovieLens copies ($MOVIEREC_DATA_DIR or ../shared/data/movielens) holding every dataset the tests read; skips otherwise."
    root, why = _real_root()
    if root is None:
        _skip_or_fail(f"real MovieLens data not found ({why}): set MOVIEREC_DATA_DIR or place ../shared/data/movielens beside the "
                      f"repository with {', '.join(REAL_FILES)}")
    return root


@pytest.fixture(scope="session")
def ncf_dir() -> Path:
    "Folder of He et al.'s ML-1M test files ($MOVIEREC_NCF_DIR or ../shared/data/ncf); skips when absent."
    for cand in (os.environ.get("MOVIEREC_NCF_DIR"), SHARED_NCF):
        if cand and (Path(cand) / "ml-1m.test.negative").is_file():
            return Path(cand)
    _skip_or_fail("He et al.'s test files not found: set MOVIEREC_NCF_DIR or place ../shared/data/ncf beside the repository "
                  "(ml-1m.test.rating, ml-1m.test.negative)")


@pytest.fixture(scope="session")
def synthetic_100k(tmp_path_factory) -> Path:
    "A small synthetic ml-100k folder (200 users, 400 movies, 8,000 ratings)."
    from movierec_nb.data import write_synthetic
    return write_synthetic(tmp_path_factory.mktemp("syn") / "ml-100k", "ml-100k", n_users=200, n_items=400,
                           n_ratings=8000, seed=7)


def assert_clean_report(notebook: Path, paper: str) -> None:
    "A report opens with its header, and no output holds a progress bar, a warning, a traceback or anything on stderr."
    import json
    nb = json.loads(Path(notebook).read_text(encoding="utf-8"))
    header = "".join(nb["cells"][1]["source"])
    assert nb["cells"][1]["cell_type"] == "markdown" and header.startswith(f"**{paper} · ") and "| wall time |" in header, header[:300]
    assert "| settings used |" in header and "| provenance |" in header and "| machine |" in header
    for k, cell in enumerate(nb["cells"]):
        for out in cell.get("outputs", []):
            text = json.dumps(out)
            assert not (out.get("output_type") == "stream" and out.get("name") == "stderr"), (k, text[:300])
            for bad in ("Warning", "Traceback", "%|", "it/s]"):
                assert bad not in text, (k, bad, text[:300])


def drop_summary(monkeypatch) -> None:
    "Make `reproduce.plan` leave out the runs that read the other reports (the summary): one kernel start less per call."
    from movierec_nb import reproduce as R
    full = R.plan
    monkeypatch.setattr(R, "plan", lambda profile: [r for r in full(profile) if not r.reads_reports])


@pytest.fixture
def no_summary(monkeypatch):
    "Plans without the summary run (tests/test_reproduce.py checks the summary itself)."
    drop_summary(monkeypatch)


TINY_CHAPTER = [
    ("parameters", 'dataset = "synthetic"\nprofile = "test"\nreport_dir = None\ndata_dir = None\npath = None\nverify = True\nseed = 0\nsleep = 0\n'
                   'ready = None'),
    (None, 'from movierec_nb.report import ChapterRun\n'
           'if dataset not in ("synthetic", "folder"): raise ValueError(f"unknown dataset {dataset!r}; valid: synthetic, folder")\n'
           'run = ChapterRun.start("data", profile, dataset=dataset, path=path, report_dir=report_dir, seed=seed)\n'
           'import time, pathlib\nif ready: pathlib.Path(ready).touch()   # the kernel is inside the chapter: a test may signal it now\n'
           'for k in range(int(sleep * 10)): time.sleep(0.1)\n'
           'run.save({"seed": seed});'),
]


@pytest.fixture(scope="session")
def tiny_chapter(tmp_path_factory) -> str:
    "A chapter of two cells that saves a report in a second: for testing the orchestration, not a chapter (absolute path)."
    import nbformat
    cells = [nbformat.v4.new_markdown_cell("# tiny: a chapter for the orchestration tests")]
    for tag, src in TINY_CHAPTER:
        c = nbformat.v4.new_code_cell(src)
        if tag: c.metadata["tags"] = [tag]
        cells.append(c)
    nb = nbformat.v4.new_notebook(cells=cells, metadata={"kernelspec": {"display_name": "python3", "language": "python", "name": "python3"}})
    path = tmp_path_factory.mktemp("chapter") / "tiny.ipynb"
    nbformat.write(nb, path)
    return str(path)
