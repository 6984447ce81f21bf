"""Data layer: real-data loads, verified download, and a clear error for every kind of bad input."""
from __future__ import annotations

import hashlib
import http.server
import shutil
import threading
import warnings
import zipfile
from dataclasses import replace
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from movierec_nb import data as D
from movierec_nb.data import (ChecksumError, CorruptArchiveError, DatasetNotFoundError, FormatMismatchError,
                              MalformedDataError, dataset_info, load_movielens, write_synthetic)


# ---------------------------------------------------------------- real data (skipped without it)

def test_ml100k_real(real_root):
    d = load_movielens("ml-100k", real_root, download=False)
    assert (d.n_ratings, d.n_users, d.n_items, len(d.items)) == (100_000, 943, 1_682, 1_682)
    assert d.source.verified and all(f["status"] == "verified" for f in d.source.files)
    assert d.ratings.rating.value_counts().sort_index().tolist() == [6110, 11370, 27145, 34174, 21201]
    assert d.users.age_group.notna().all() and set(d.users.gender) == {"M", "F"}
    assert d.items.set_index("item_id").loc[1, "title"] == "Toy Story"


def test_ml_latest_small_real(real_root):
    d = load_movielens("ml-latest-small", real_root, download=False)
    assert (d.n_ratings, d.n_users, d.n_items, len(d.items)) == (100_836, 610, 9_724, 9_742)
    assert d.source.verified and d.users is None
    assert d.ratings.timestamp.min() == 828124615 and d.ratings.timestamp.max() == 1537799250
    assert set(np.unique(d.ratings.rating)) == set(np.arange(1, 11) / 2)
    raw = pd.read_csv(real_root / "ml-latest-small" / "movies.csv")          # counted from the file itself, not by our parser
    assert (d.items.genres.map(len) == 0).sum() == (raw.genres == "(no genres listed)").sum() == 34


def test_ml1m_partial_loads_verified_as_its_subset(real_root, tmp_path):
    """ml-1m's first half is a subset by rule (`data.SUBSETS`): it loads verified against the checksums of what the rule yields,
    by its folder under the data root and by an explicit path; a copy whose ratings differ is refused as not the rule's result."""
    d = load_movielens("ml-1m", real_root, path="ml-1m-partial", download=False)
    assert d.n_ratings == 487_650 and d.ratings.user_id.min() == 1 and d.ratings.user_id.max() == 2999
    assert d.n_users == 2999 and len(d.users) == 6040
    status = {f["file"]: f["status"] for f in d.source.files}
    assert status == {"ratings.dat": "verified", "movies.dat": "verified", "users.dat": "verified"}
    assert d.source.verified and not d.source.to_dict()["warnings"]
    assert set(d.users.age_group.cat.categories) == set(D.ML1M_AGE_GROUPS.values())
    copy = tmp_path / "ml-1m-partial"
    shutil.copytree(real_root / "ml-1m-partial", copy)
    with open(copy / "ratings.dat", "ab") as f: f.write(b"3000::1::5::978300760\n")     # one line of a user the rule leaves out
    with pytest.raises(ChecksumError, match="expected sha256 1273c4edfe3c0ff9e3a0a0d55819faeb947da0ad7df3927333b51ebefbeedc3d"):
        load_movielens("ml-1m", path=copy, cache=False)


def test_ml1m_partial_without_the_official_release_says_how_to_make_it(tmp_path):
    with pytest.raises(DatasetNotFoundError, match=r"ml-1m-partial is the lines of users 1-2999 .* needs .*ml-1m/ratings.dat, which is missing; "
                                                   r"download https://files.grouplens.org/datasets/movielens/ml-1m.zip"):
        load_movielens("ml-1m", tmp_path, path="ml-1m-partial", download=False)


def test_real_ml1m_folder_without_ratings_says_which_file(real_root):
    with pytest.raises(DatasetNotFoundError, match=r"'ratings.dat' \(ratings\) not found in .*ml-1m \(it holds: README, movies.dat, users.dat\)"):
        load_movielens("ml-1m", real_root)


# ---------------------------------------------------------------- bad input

def test_unknown_dataset_lists_valid_names():
    with pytest.raises(ValueError, match="unknown dataset 'ml-30m'; valid: ml-100k, ml-1m, ml-latest-small, ml-20m, ml-25m"):
        load_movielens("ml-30m")


def test_missing_folder_says_where_and_how(tmp_path):
    with pytest.raises(DatasetNotFoundError) as e:
        load_movielens("ml-100k", tmp_path, download=False)
    msg = str(e.value)
    assert str(tmp_path / "ml-100k") in msg and "data_dir parameter" in msg
    assert "https://files.grouplens.org/datasets/movielens/ml-100k.zip" in msg


def test_missing_file(tmp_path, synthetic_100k):
    folder = shutil.copytree(synthetic_100k, tmp_path / "ml-100k")
    (folder / "u.item").unlink()
    with pytest.raises(DatasetNotFoundError, match="'u.item' \\(items\\) not found"):
        load_movielens("ml-100k", tmp_path)


def test_checksum_mismatch_gives_expected_actual_and_path(tmp_path, synthetic_100k):
    folder = shutil.copytree(synthetic_100k, tmp_path / "ml-100k")
    raw = (folder / "u.data").read_bytes()
    (folder / "u.data").write_bytes(raw.replace(b"\t5\t", b"\t4\t", 1))
    want = hashlib.sha256(raw).hexdigest()
    got = hashlib.sha256((folder / "u.data").read_bytes()).hexdigest()
    with pytest.raises(ChecksumError) as e:
        load_movielens("ml-100k", path=folder)
    assert f"expected sha256 {want}" in str(e.value) and f"actual   sha256 {got}" in str(e.value)
    assert str(folder / "u.data") in str(e.value)
    with pytest.warns(UserWarning, match="verify=False"):
        d = load_movielens("ml-100k", path=folder, verify=False)   # an explicit opt-out loads it, recorded
    assert not d.source.verified


def test_unverifiable_local_files_are_named(tmp_path):
    folder = write_synthetic(tmp_path / "ml-25m", "ml-25m", n_users=50, n_items=200, n_ratings=1500, seed=1)
    (folder / D.RECORD_NAME).unlink()   # like a hand-extracted ml-25m: no known per-file checksums
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        d = load_movielens("ml-25m", path=folder)
    assert sorted(str(w.message) for w in caught) == [
        "ml-25m: movies.csv could not be verified (no checksum is known for it here)",
        "ml-25m: ratings.csv could not be verified (no checksum is known for it here)"]
    assert {f["status"] for f in d.source.files} == {"unverifiable"} and len(d.source.warnings) == 2


@pytest.mark.parametrize("line,match", [
    ("1\t2\tthree\t881250949", r"line 8001: 'three' is not a valid float"),
    ("1\t2\t3", r"line 8001: expected 4 fields, found 3"),
    ("1\t2\t7\t881250949", r"line 8001: rating outside the scale 1-5"),
    ("0\t2\t3\t881250949", r"line 8001: IDs must be positive"),
])
def test_malformed_rows_report_line_number(tmp_path, synthetic_100k, line, match):
    folder = shutil.copytree(synthetic_100k, tmp_path / "ml-100k")
    with open(folder / "u.data", "a") as f: f.write(line + "\n")
    with pytest.raises(MalformedDataError, match=match), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        load_movielens("ml-100k", path=folder, verify=False)


def test_duplicate_pair_reports_line(tmp_path, synthetic_100k):
    folder = shutil.copytree(synthetic_100k, tmp_path / "ml-100k")
    first = (folder / "u.data").read_text().splitlines()[0]
    with open(folder / "u.data", "a") as f: f.write(first + "\n")
    with pytest.raises(MalformedDataError, match="line 8001: the same \\(user, movie\\) pair is rated twice"), \
            warnings.catch_warnings():
        warnings.simplefilter("ignore")
        load_movielens("ml-100k", path=folder, verify=False)


def test_wrong_delimiter_for_named_dataset(tmp_path):
    csv_folder = write_synthetic(tmp_path / "latest", "ml-latest-small", n_users=30, n_items=100, n_ratings=800)
    fake = tmp_path / "fake-1m"
    fake.mkdir()
    for src, dst in [("ratings.csv", "ratings.dat"), ("movies.csv", "movies.dat")]:
        shutil.copy(csv_folder / src, fake / dst)
    shutil.copy(write_synthetic(tmp_path / "m1", "ml-1m", n_users=30, n_items=100, n_ratings=800) / "users.dat", fake)
    with pytest.raises(FormatMismatchError, match="looks like the ml-latest/ml-20m/ml-25m CSV format; ml-1m expects UserID::MovieID::Rating::Timestamp"), \
            warnings.catch_warnings():
        warnings.simplefilter("ignore")
        load_movielens("ml-1m", path=fake)
    tab = tmp_path / "tab"
    shutil.copytree(csv_folder, tab)
    (tab / D.RECORD_NAME).unlink()
    (tab / "ratings.csv").write_text("1\t2\t3\t4\n")
    with pytest.raises(FormatMismatchError, match="ml-100k format \\(tab-separated\\); ml-latest-small expects userId,movieId"), \
            warnings.catch_warnings():
        warnings.simplefilter("ignore")
        load_movielens("ml-latest-small", path=tab)


def test_single_colon_in_ml1m_line(tmp_path):
    folder = write_synthetic(tmp_path / "m1", "ml-1m", n_users=30, n_items=100, n_ratings=800)
    with open(folder / "ratings.dat", "a") as f: f.write("1::5:3::978300760\n")
    with pytest.raises(MalformedDataError, match="line 801: expected 4 fields separated by '::'"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        load_movielens("ml-1m", path=folder, verify=False)


def test_rating_of_unknown_movie(tmp_path, synthetic_100k):
    folder = shutil.copytree(synthetic_100k, tmp_path / "ml-100k")
    with open(folder / "u.data", "a") as f: f.write("1\t99999\t3\t881250949\n")
    with pytest.raises(MalformedDataError, match="1 rating\\(s\\) refer to a movie missing from u.item \\(first: line 8001"), \
            warnings.catch_warnings():
        warnings.simplefilter("ignore")
        load_movielens("ml-100k", path=folder, verify=False)


# ---------------------------------------------------------------- archives and download

def _zip_folder(folder: Path, archive: Path, inner: str) -> Path:
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for p in sorted(folder.iterdir()):
            if p.name != D.RECORD_NAME: zf.write(p, f"{inner}/{p.name}")
    return archive


def test_truncated_zip_is_refused(tmp_path, synthetic_100k):
    archive = _zip_folder(synthetic_100k, tmp_path / "ml-100k.zip", "ml-100k")
    archive.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    with pytest.raises(CorruptArchiveError, match="not a readable zip archive .*: truncated or damaged"):
        D.extract_archive(archive, tmp_path, dataset_info("ml-100k"))
    assert not (tmp_path / "ml-100k").exists()


def test_zip_with_bad_crc_is_refused(tmp_path, synthetic_100k):
    archive = _zip_folder(synthetic_100k, tmp_path / "ml-100k.zip", "ml-100k")
    raw = bytearray(archive.read_bytes())
    with zipfile.ZipFile(archive) as zf: info = zf.getinfo("ml-100k/u.data")
    raw[info.header_offset + 30 + len(info.filename) + 10] ^= 0xFF   # flip a byte of compressed data
    archive.write_bytes(bytes(raw))
    with pytest.raises(CorruptArchiveError, match=r"ml-100k.zip: not a readable zip archive \(Error -3 while decompressing"):
        D.extract_archive(archive, tmp_path, dataset_info("ml-100k"))


@pytest.fixture()
def local_server(tmp_path):
    "An HTTP server on 127.0.0.1 serving tmp_path/'srv' (stands in for GroupLens)."
    root = tmp_path / "srv"
    root.mkdir()
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a, **k: None
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield root, f"http://127.0.0.1:{srv.server_address[1]}/"
    srv.shutdown()


def test_verified_download_extract_and_load(tmp_path, synthetic_100k, local_server):
    root, url = local_server
    archive = _zip_folder(synthetic_100k, root / "ml-100k.zip", "ml-100k")
    md5 = hashlib.md5(archive.read_bytes()).hexdigest()
    info = replace(dataset_info("ml-100k"), url=url + "ml-100k.zip", archive_hash=f"md5:{md5}", known_files={})
    folder = D.download_movielens("ml-100k", tmp_path / "data", progress=False, info=info)
    assert folder == tmp_path / "data" / "ml-100k" and (folder / D.RECORD_NAME).exists()
    d = load_movielens("ml-100k", path=folder)
    assert d.source.verified and d.n_ratings == 8000 and "extracted from" in d.source.origin
    # a download whose checksum differs is refused and not kept
    bad = replace(info, archive_hash="md5:" + "0" * 32)
    shutil.rmtree(tmp_path / "data")
    with pytest.raises(ChecksumError, match="failed its checksum"):
        D.download_movielens("ml-100k", tmp_path / "data", progress=False, info=bad)
    assert not (tmp_path / "data" / "ml-100k").exists()
    assert not list((tmp_path / "data" / ".downloads").glob("ml-100k.zip"))


def test_failed_download_says_url_and_folder(tmp_path, local_server):
    _, url = local_server
    info = replace(dataset_info("ml-100k"), url=url + "missing.zip")
    with pytest.raises(DatasetNotFoundError, match="could not download .*missing.zip.*put the extracted official files in"):
        D.download_movielens("ml-100k", tmp_path, progress=False, info=info)


# ---------------------------------------------------------------- cache, formats, generator

def test_parsed_cache_is_used_and_keyed_by_content(tmp_path, synthetic_100k, monkeypatch):
    folder = shutil.copytree(synthetic_100k, tmp_path / "ml-100k")
    first = load_movielens("ml-100k", path=folder)
    monkeypatch.setattr(D, "_parse_folder", lambda *a, **k: pytest.fail("cache not used"))
    again = load_movielens("ml-100k", path=folder)
    pd.testing.assert_frame_equal(first.ratings, again.ratings)
    pd.testing.assert_frame_equal(first.items, again.items)
    pd.testing.assert_frame_equal(first.users, again.users)
    monkeypatch.undo()
    unrated = sorted(set(first.items.item_id) - set(first.ratings.item_id[first.ratings.user_id == 1]))[0]
    with open(folder / "u.data", "a") as f: f.write(f"1\t{unrated}\t5\t881250949\n")
    with pytest.warns(UserWarning, match="verify=False"):
        changed = load_movielens("ml-100k", path=folder, verify=False)   # new content, new cache key: parsed again
    assert changed.n_ratings == first.n_ratings + 1


def test_crlf_and_lf_csv_load_identically(tmp_path):
    a = load_movielens("ml-latest-small", path=write_synthetic(tmp_path / "a", "ml-latest-small", n_users=40,
                                                               n_items=150, n_ratings=1200, seed=2, eol="\r\n"))
    b = load_movielens("ml-latest-small", path=write_synthetic(tmp_path / "b", "ml-latest-small", n_users=40,
                                                               n_items=150, n_ratings=1200, seed=2, eol="\n"))
    pd.testing.assert_frame_equal(a.ratings, b.ratings)
    assert a.items.title.tolist() == b.items.title.tolist()


def test_synthetic_has_long_tails_and_signal():
    fr = D.synthetic_frames(400, 800, 30_000, seed=0)
    r = fr["ratings"]
    pop = r.item_id.value_counts()
    assert pop.iloc[: len(pop) // 10].sum() > 0.3 * len(r)          # popular head
    act = r.user_id.value_counts()
    assert act.max() > 5 * act.median()                              # heavy users
    # popular movies are rated higher on average (a popularity/quality link, as in MovieLens)
    mean_by_item = r.groupby("item_id").rating.mean()
    assert np.corrcoef(np.log(pop.loc[mean_by_item.index]), mean_by_item)[0, 1] > 0.1
    # some users rate in batches: ties at the latest timestamp exist
    last = r.groupby("user_id").timestamp.transform("max") == r.timestamp
    assert (last.groupby(r.user_id).sum() > 1).sum() > 0


def test_synthetic_rejects_impossible_shapes():
    with pytest.raises(ValueError, match="exceed"):
        D.synthetic_frames(10, 100, 900)
    with pytest.raises(ValueError, match="n_items must be positive"):
        D.synthetic_frames(10, 0, 100)
    with pytest.raises(ValueError, match="unknown format"):
        D.synthetic_frames(10, 100, 300, fmt="ml-10m")
