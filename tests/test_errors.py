"""Every error path a user can reach with a bad file or a bad argument, each with the message the user sees."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from movierec_nb import metrics as M
from movierec_nb import reproduce as R
from movierec_nb import tuning as T
from movierec_nb.baselines import make_model
from movierec_nb.data import MalformedDataError, synthetic_frames, write_synthetic
from movierec_nb.splits import (LeaveOneOut, TemporalRatio, binarize, load_official_folds, read_ncf_files, read_split_csv,
                                sample_candidates, split, write_ncf_files)


@pytest.fixture(scope="module")
def ncf_prefix(tmp_path_factory) -> Path:
    "A small split written in the NCF authors' format (ok.train.rating, ok.test.rating, ok.test.negative)."
    s = split(binarize(synthetic_frames(30, 60, 600, fmt="ml-1m", seed=1)["ratings"]), LeaveOneOut(validation=False))
    return write_ncf_files(tmp_path_factory.mktemp("ncf") / "ok", s, sample_candidates(s, 20, 0))


def _variant(ok: Path, name: str, negative: list[str]) -> Path:
    "A copy of the NCF files `ok` whose negative file holds `negative` (the lines)."
    for part in ("train.rating", "test.rating"):
        ok.with_name(f"{name}.{part}").write_text(ok.with_name(f"ok.{part}").read_text())
    ok.with_name(f"{name}.test.negative").write_text("".join(line + "\n" for line in negative))
    return ok.with_name(name)


def _negative_lines(ok: Path) -> list[str]:
    return ok.with_name("ok.test.negative").read_text().splitlines()


def test_ncf_negative_file_with_a_missing_line(ncf_prefix):
    with pytest.raises(ValueError, match=r"short.test.negative: 29 line\(s\), but the test file has 30 row\(s\)"):
        read_ncf_files(_variant(ncf_prefix, "short", _negative_lines(ncf_prefix)[:-1]))


def test_ncf_negative_file_with_a_wrong_leading_pair(ncf_prefix):
    lines = _negative_lines(ncf_prefix)
    lines[3] = lines[3].replace("(", "(999", 1)
    with pytest.raises(ValueError, match=r"pair.test.negative: line 4: \(999\d+,\d+\) is not test row 4"):
        read_ncf_files(_variant(ncf_prefix, "pair", lines))


def test_ncf_negative_file_with_a_word_for_an_id(ncf_prefix):
    lines = _negative_lines(ncf_prefix)
    fields = lines[2].split("\t")
    lines[2] = "\t".join([fields[0], "abc", *fields[2:]])
    with pytest.raises(ValueError, match="word.test.negative: line 3: 'abc' is not a number"):
        read_ncf_files(_variant(ncf_prefix, "word", lines))


def test_ncf_files_that_are_empty(ncf_prefix):
    with pytest.raises(ValueError, match=r"empty.test.negative: 0 line\(s\), but the test file has 30 row\(s\)"):
        read_ncf_files(_variant(ncf_prefix, "empty", []))
    ncf_prefix.with_name("blank.train.rating").write_text("")
    with pytest.raises(ValueError, match="blank.train.rating: the file is empty"):
        read_ncf_files(ncf_prefix.with_name("blank"))


def test_split_csv_that_does_not_exist(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.csv does not exist"):
        read_split_csv(tmp_path / "nope.csv", tmp_path / "nope-test.csv")


def test_official_folds_that_do_not_partition_the_ratings(tmp_path):
    "u1-u5's test sets must partition u.data: a fold whose test rows are also another's is refused, naming the folder."
    folder = write_synthetic(tmp_path / "ml-100k", "ml-100k", n_users=60, n_items=80, n_ratings=1200, seed=3)
    (folder / "u2.test").write_text((folder / "u1.test").read_text())        # u2 tests u1's rows: u2.base + u2.test is not u.data
    with pytest.warns(UserWarning), pytest.raises(MalformedDataError, match=r"u2.base and u2.test together are not the ratings of u.data"):
        load_official_folds(path=folder, verify=False)
    (folder / "u2.base").write_text((folder / "u1.base").read_text())        # now each fold is whole, but u1 and u2 test the same rows
    with pytest.warns(UserWarning), pytest.raises(MalformedDataError, match=r"the test sets of u1, u2, u3, u4, u5 do not partition the ratings"):
        load_official_folds(path=folder, verify=False)


@pytest.mark.parametrize("args,message", [
    (["--worker", "-1"], "error: --worker must be >= 0, got -1"),
    (["--dataset", "ml-9m"], "error: unknown dataset 'ml-9m'; valid: ml-100k, ml-1m, ml-latest-small, ml-20m, ml-25m"),
    (["--dataset", "ml-100k", "--path", "{tmp}/nowhere"], "(the path parameter) does not exist"),
    (["--storage", "nosuchdb://x"], "error: storage 'nosuchdb://x' is not a usable Optuna storage URL"),
])
def test_tuning_cli_bad_arguments(args, message, tmp_path, capsys):
    "The tuning command's bad arguments: exit status 2 and one line that names the problem (no traceback)."
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    storage = [] if "--storage" in args else ["--storage", f"sqlite:///{tmp_path / 'study.db'}"]
    assert T.main(["zeng-embedding", *args, *storage]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_tuning_cli_unknown_model(capsys):
    assert T.main(["svd-magic"]) == 2
    assert "error: unknown model 'svd-magic'; tunable: " in capsys.readouterr().err


def test_reproduce_cli_dataset_that_matches_no_run(tmp_path, capsys):
    assert R.cli(["--profile", "quick", "--chapter", "data", "--dataset", "ml-77k", "--reports", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "error: no run matches chapter(s) ['data'] and dataset(s) ['ml-77k']" in err and "datasets: ml-100k" in err


def test_reproduce_cli_unknown_profile(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        R.cli(["--profile", "fast", "--reports", str(tmp_path)])
    assert e.value.code == 2 and "argument --profile: invalid choice: 'fast'" in capsys.readouterr().err


def test_metrics_shape_mismatch_and_bad_k():
    with pytest.raises(ValueError, match=r"shapes differ: \(3,\) vs \(4,\)"):
        M.rmse(np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError, match=r"scores must be 2-D \(rows × candidates\), got shape \(4,\)"):
        M.hit_ratio(np.zeros(4), k=2)
    with pytest.raises(ValueError, match=r"K=0 must be between 1 and the number of candidates \(4\)"):
        M.ndcg(np.zeros((3, 4)), k=0)


def test_per_user_threshold_k_below_one_and_empty_parts():
    df = synthetic_frames(30, 60, 600, fmt="ml-1m", seed=1)["ratings"]
    temporal = split(df, TemporalRatio(0.8))
    pop = make_model("popularity").fit(temporal)
    with pytest.raises(ValueError, match="K must be >= 1, got 0"):
        M.evaluate(pop, temporal, M.PerUserThreshold(ks=(0,)))
    loo = split(binarize(df), LeaveOneOut(validation=False))
    with pytest.raises(ValueError, match="the valid part of this split is empty: nothing to evaluate"):
        M.evaluate(make_model("popularity").fit(loo), loo, M.SampledCandidates(20, (10,)), which="valid")
