"""Cache directory resolution and the checksum-verified download, against a local HTTP server."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from nomoretuning.data import (
    CENSUS_INCOME_SHA256,
    cache_dir,
    download,
    download_census_income,
    find_census_income,
    sha256_file,
)
from nomoretuning.errors import DataError


def test_cache_dir_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOMORETUNING_CACHE", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == tmp_path / "home" / ".cache" / "nomoretuning"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "nomoretuning"
    monkeypatch.setenv("NOMORETUNING_CACHE", str(tmp_path / "env"))
    assert cache_dir() == tmp_path / "env"
    assert cache_dir(tmp_path / "arg") == tmp_path / "arg"
    assert not (tmp_path / "env").exists()  # resolving never creates anything


def test_the_real_file_has_the_expected_hash(census_path: Path) -> None:
    assert sha256_file(census_path) == CENSUS_INCOME_SHA256


def test_download_verifies_and_lands_in_the_cache(
    tmp_path: Path, census_server: str, capsys: pytest.CaptureFixture[str]
) -> None:
    cache = tmp_path / "cache"
    assert find_census_income(cache) is None
    url = f"{census_server}/census-income.test.gz"
    path = download_census_income(cache, url=url, progress=True)
    assert path == cache / "census-income-kdd" / "census-income.test.gz"
    assert sha256_file(path) == CENSUS_INCOME_SHA256
    assert find_census_income(cache) == path
    assert sorted(p.name for p in path.parent.iterdir()) == ["census-income.test.gz"]
    err = capsys.readouterr().err
    assert "downloading census-income.test.gz" in err and "(100%)" in err
    # Present and valid: returned without touching the network.
    assert download_census_income(cache, url="http://127.0.0.1:9/none") == path


def test_bad_hash_leaves_nothing_behind(tmp_path: Path, census_server: str) -> None:
    cache = tmp_path / "cache"
    wrong = "0" * 64
    with pytest.raises(
        DataError, match=f"sha256 mismatch, expected {wrong} but got {CENSUS_INCOME_SHA256}"
    ) as info:
        download_census_income(cache, url=f"{census_server}/census-income.test.gz", sha256=wrong)
    assert "\n" not in str(info.value)
    folder = cache / "census-income-kdd"
    assert list(folder.iterdir()) == []  # no partial or temporary file
    assert find_census_income(cache) is None


def test_http_error_and_refused_connection_leave_nothing(
    tmp_path: Path, census_server: str
) -> None:
    with pytest.raises(DataError, match=r"download failed .*check the network or the URL"):
        download(f"{census_server}/missing.gz", tmp_path / "x.gz", sha256=None)
    with socket.socket() as s:  # a port with nobody listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(DataError, match="download failed"):
        download(f"http://127.0.0.1:{port}/x.gz", tmp_path / "x.gz", sha256=None, timeout=5)
    assert list(tmp_path.iterdir()) == []


def test_a_corrupt_cached_file_is_reported(tmp_path: Path) -> None:
    (tmp_path / "census-income.test.gz").write_bytes(b"corrupt")
    with pytest.raises(
        DataError,
        match="sha256 mismatch.*delete the file or call "
        r"download_census_income\(force=True\)",
    ):
        download_census_income(tmp_path, url="http://127.0.0.1:9/none")


def test_force_replaces_a_corrupt_file_atomically(tmp_path: Path, census_server: str) -> None:
    target = tmp_path / "census-income.test.gz"
    target.write_bytes(b"corrupt")
    url = f"{census_server}/census-income.test.gz"
    with pytest.raises(DataError, match="sha256 mismatch"):
        download_census_income(tmp_path, url=url, sha256="1" * 64, force=True)
    assert target.read_bytes() == b"corrupt"  # a failed download does not touch it
    assert download_census_income(tmp_path, url=url, force=True) == target
    assert sha256_file(target) == CENSUS_INCOME_SHA256
