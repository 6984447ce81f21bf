"""The course site (`make docs`), checked in a real browser: every page loads in headless Chromium without a console error,
every internal link and image resolves, and two screenshots are written for the reader of the CI log.

The site takes minutes to build, so `make test` does not build it: `.ci/run` runs `make docs` and then this file with
MOVIEREC_SITE pointing at the built site (MOVIEREC_REQUIRE_SITE=1 turns a missing site or browser into a failure)."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from movierec_nb.docs import LIBRARY, REPORTED, report_pages, site_problems
from movierec_nb.reproduce import REPO

REQUIRE = "MOVIEREC_REQUIRE_SITE"
CONSOLE = re.compile(r":CONSOLE[:(\]].*")
BROWSER = next((b for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None)


def _need(what: str) -> None:
    if os.environ.get(REQUIRE): pytest.fail(f"{what} ({REQUIRE} is set)")
    pytest.skip(what)


@pytest.fixture(scope="module")
def site() -> Path:
    "The built site's html folder: $MOVIEREC_SITE, else _site/html when `make docs` made it."
    html = Path(os.environ.get("MOVIEREC_SITE") or REPO / "_site" / "html")
    if not (html / "index.html").exists(): _need(f"no built site at {html}: run `make docs` first")
    return html


def _chromium(*args: str) -> subprocess.CompletedProcess:
    if BROWSER is None: _need("no Chromium on this machine: `apt-get install chromium` (as .ci/run does)")
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--enable-logging=stderr", "--v=0"]
    return subprocess.run([BROWSER, *flags, *args], capture_output=True, text=True, timeout=120)


def test_every_chapter_and_report_has_a_page(site):
    pages = {p.relative_to(site).as_posix() for p in site.rglob("*.html")}
    assert {"index.html", "nbs/glossary.html", "api.html"} <= pages
    assert {f"nbs/{n}.html" for ns in LIBRARY.values() for n in ns} <= pages
    reports = REPO / "reports"
    assert {f"reports/{f}/{p.stem}.html" for s in REPORTED.values() for f in s for p in report_pages(reports, f)} <= pages
    index = (site / "index.html").read_text(encoding="utf-8")
    assert "Foundations" in index and "The papers and the control" in index and "Infrastructure" in index   # the navigation


def test_no_internal_link_or_image_points_nowhere(site):
    assert site_problems(site) == []


def test_pages_load_in_a_browser_without_console_errors(site, tmp_path):
    "Every chapter page, the front page, the glossary and one report per folder, opened in headless Chromium."
    pages = ["index.html", "api.html", *sorted(p.relative_to(site).as_posix() for p in site.glob("nbs/*.html")),
             *sorted(p.relative_to(site).as_posix() for p in site.glob("papers/*.html"))]
    pages += [sorted(d.glob("*.html"))[0].relative_to(site).as_posix() for d in sorted((site / "reports").iterdir()) if list(d.glob("*.html"))]
    errors = []
    for page in pages:
        p = _chromium("--virtual-time-budget=3000", "--dump-dom", (site / page).as_uri())
        if p.returncode != 0 or "</html>" not in p.stdout: errors.append(f"{page}: did not load (exit {p.returncode})")
        errors += [f"{page}: {m.group(0)}" for m in CONSOLE.finditer(p.stderr)]
    assert errors == []


def test_screenshots_for_the_ci_log(site):
    out = Path(os.environ.get("MOVIEREC_SCREENSHOTS") or site.parent / "screenshots")
    out.mkdir(parents=True, exist_ok=True)
    shots = {"front-page.png": site / "index.html", "zeng-embedding-report.png": site / "reports" / "zeng-embedding" / "ml-100k-quick.html"}
    for name, page in shots.items():
        p = _chromium("--window-size=1280,1400", f"--screenshot={out / name}", page.as_uri())
        assert p.returncode == 0 and (out / name).stat().st_size > 20_000, (name, p.stderr[-500:])   # a rendered page, not a blank one
    print(f"screenshots: {', '.join(str(out / n) for n in shots)}")
