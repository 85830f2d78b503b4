"""`import nomoretuning` never needs pandas; `nomoretuning.data` imports without it too."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def test_core_and_data_import_without_pandas() -> None:
    code = textwrap.dedent(
        """
        import sys
        sys.modules["pandas"] = None  # any attempt to import pandas now fails
        import nomoretuning
        import nomoretuning.data as data
        ds = data.make_synthetic(1000, seed=0)
        assert len(ds.train) == 800
        sys.modules["pyarrow"] = None
        try:
            data.load_table("x.csv", sparse=["a"], labels=["y"])
        except ImportError:
            print("pandas needed only by the readers")
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert out.returncode == 0, out.stderr
    assert "pandas needed only by the readers" in out.stdout


def test_public_api_is_exported() -> None:
    import nomoretuning.data as data

    for name in data.__all__:
        assert hasattr(data, name), name


def test_the_package_lists_every_public_name_load_run_included() -> None:
    import nomoretuning as nt

    assert set(nt.__all__) <= set(dir(nt))  # load_run comes from __getattr__, on first use
    assert callable(nt.load_run)
