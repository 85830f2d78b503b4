"""Fixtures of the data-layer tests: the real files in ../shared/data and a local HTTP server."""

from __future__ import annotations

import functools
import http.server
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from nomoretuning.data import PreparedDataset, load_census_income

collect_ignore = ["conftest.py"]
"""Not collected for doctests: ``--doctest-modules`` imports every ``conftest.py`` outside a package
as the module ``conftest``, and a second one (tests/training has one) then fails to collect."""

SHARED_DATA = Path(
    os.environ.get(
        "NOMORETUNING_SHARED_DATA", Path(__file__).resolve().parents[3] / "shared" / "data"
    )
)


def _real(relative: str) -> Path:
    path = SHARED_DATA / relative
    if not path.is_file():
        pytest.skip(f"real data file {path} not available")
    return path


@pytest.fixture(scope="session")
def census_path() -> Path:
    return _real("census-income-kdd/census-income.test.gz")


@pytest.fixture(scope="session")
def census_sample_path() -> Path:
    return _real("census-income-kdd/census-income.sample")


@pytest.fixture(scope="session")
def tiktok_path() -> Path:
    return _real("tiktok-icme2019-sample/final_track2_sample.txt")


@pytest.fixture(scope="session")
def aliexpress_dir() -> Path:
    """The folder of the AliExpress sample (a train and a test file, no validation file)."""
    return _real("aliexpress-sample/aliexpress_train_sample.csv").parent


@pytest.fixture(scope="session")
def lambdarank_dir() -> Path:
    """The folder of LightGBM's lambdarank example (rank.train, rank.test, their .query files)."""
    return _real("lambdarank-example/rank.train").parent


@pytest.fixture(scope="session")
def census(census_path: Path) -> PreparedDataset:
    """The real Census-Income test file with the default tasks, split 80/10/10 with seed 0."""
    return load_census_income(census_path)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def census_server(census_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Base URL of an HTTP server on 127.0.0.1 serving the folder of the real Census file."""
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "*")
    handler = functools.partial(_QuietHandler, directory=str(census_path.parent))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
