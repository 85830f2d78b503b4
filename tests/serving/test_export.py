"""Export to ONNX and TorchScript: parity with eager, dynamic batch, OOV ids, atomic writes."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from nomoretuning.errors import ConfigError
from nomoretuning.models import FeatureConfig, MultiTaskModel, SparseField, build_model
from nomoretuning.serving.export import FORMATS, ServingModule, export_model
from nomoretuning.serving.exported import load_exported, parity

FEATURES = FeatureConfig((SparseField("user", 7), SparseField("item", 5)), ("age", "price"))
DENSE_ONLY = FeatureConfig((), tuple(f"f{i}" for i in range(300)))
SPARSE_ONLY = FeatureConfig((SparseField("query", 11), SparseField("doc", 4), SparseField("u", 2)))
SMALL = {
    "shared_bottom": {"bottom_dims": (8,), "tower_dims": (4,)},
    "omoe": {"num_experts": 2, "expert_dims": (8,), "tower_dims": (4,)},
    "mmoe": {"num_experts": 3, "expert_dims": (8,), "tower_dims": (4,)},
    "ple": {"expert_dims": (8,), "tower_dims": (4,)},
    "single_task": {"bottom_dims": (8,), "tower_dims": (4,)},
    "single_score": {"hidden_dims": (8, 4)},
}
TASKS = {name: ["ctr"] if name == "single_task" else ["click", "like", "share"] for name in SMALL}
# Dense-only: a ranking model; sparse-only: an MMoE on ids alone.
EXTRA = {
    "dense_only": ("single_score", DENSE_ONLY, ["relevance", "click"]),
    "sparse_only": ("mmoe", SPARSE_ONLY, ["click", "like"]),
}
EXPORTED = [*SMALL, *EXTRA]
SUFFIX = {"onnx": ".onnx", "torchscript": ".pt"}


def _build(key: str) -> tuple[MultiTaskModel, list[str]]:
    torch.manual_seed(1)
    if key in EXTRA:
        name, features, tasks = EXTRA[key]
    else:
        name, features, tasks = key, FEATURES, TASKS[key]
    model = build_model(name, features, tasks, **SMALL[name])
    # Train-mode statistics would differ from eval: make sure the export uses eval mode.
    model.train()
    return model, tasks


def _batch(features: FeatureConfig, rows: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    vocab = np.array([f.vocab_size for f in features.sparse], dtype=np.int64)
    sparse = (rng.random((rows, features.num_sparse)) * vocab).astype(np.int64)
    dense = rng.normal(size=(rows, features.num_dense)).astype(np.float32)
    return sparse, dense


def _eager(model: MultiTaskModel, sparse: np.ndarray, dense: np.ndarray) -> dict[str, np.ndarray]:
    model.eval()
    with torch.no_grad():
        out = model(torch.from_numpy(sparse), torch.from_numpy(dense))
    return {task: torch.sigmoid(logit).numpy() for task, logit in out.items()}


def _call(exported: object, model: MultiTaskModel, sparse: np.ndarray, dense: np.ndarray) -> dict:
    features = model.features
    assert callable(exported)
    return exported(sparse if features.num_sparse else None, dense if features.num_dense else None)


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], Path]:
    """Every model exported once to each format (ONNX export is the slow part)."""
    root = tmp_path_factory.mktemp("exports")
    out: dict[tuple[str, str], Path] = {}
    for fmt in FORMATS:
        for key in EXPORTED:
            model, tasks = _build(key)
            out[(key, fmt)] = export_model(model, tasks, root / f"{key}{SUFFIX[fmt]}", fmt)
    return out


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("key", EXPORTED)
def test_probabilities_match_eager_for_any_batch_size(
    artifacts: dict[tuple[str, str], Path], key: str, fmt: str
) -> None:
    model, tasks = _build(key)
    exported = load_exported(artifacts[(key, fmt)], fmt)
    assert exported.tasks == tuple(tasks)
    for rows in (1, 9):  # the export example has 4 rows
        sparse, dense = _batch(model.features, rows, seed=rows)
        got = _call(exported, model, sparse, dense)
        want = _eager(model, sparse, dense)
        assert list(got) == tasks
        for task in tasks:
            assert got[task].dtype == np.float32
            assert got[task].shape == (rows,)
            np.testing.assert_allclose(got[task], want[task], rtol=0, atol=1e-5)
        assert parity(model, tasks, artifacts[(key, fmt)], fmt, sparse, dense) < 1e-5


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("key", ["mmoe", "sparse_only"])
def test_out_of_range_ids_are_the_oov_bucket(
    artifacts: dict[tuple[str, str], Path], key: str, fmt: str
) -> None:
    model, tasks = _build(key)
    features = model.features
    exported = load_exported(artifacts[(key, fmt)], fmt)
    sparse, dense = _batch(features, 6, seed=3)
    vocab = np.array([f.vocab_size for f in features.sparse])
    bad = sparse.copy()
    bad[0] = -1
    bad[1] = vocab  # one past the end of every column
    bad[2] = 10**12
    bad[3, 0] = -(10**9)
    oov = sparse.copy()
    oov[:3] = 0
    oov[3, 0] = 0
    got = _call(exported, model, bad, dense)
    want = _eager(model, oov, dense)
    for task in tasks:
        np.testing.assert_allclose(got[task], want[task], rtol=0, atol=1e-5)
    # The rows left alone are unaffected.
    clean = _eager(model, sparse, dense)
    np.testing.assert_allclose(got[tasks[0]][4:], clean[tasks[0]][4:], rtol=0, atol=1e-5)


def test_serving_module_inputs_and_eval_mode() -> None:
    dense_model, _ = _build("dense_only")
    sparse_model, _ = _build("sparse_only")
    both, _ = _build("mmoe")
    assert ServingModule(dense_model).input_names == ("dense",)
    assert ServingModule(sparse_model).input_names == ("sparse",)
    serving = ServingModule(both, ["like", "click"])
    assert serving.input_names == ("sparse", "dense")
    assert serving.tasks == ("like", "click")
    serving.train()
    assert not serving.training
    assert not both.training
    sparse, dense = _batch(both.features, 5, seed=0)
    like, click = serving(torch.from_numpy(sparse), torch.from_numpy(dense))
    want = _eager(both, sparse, dense)
    np.testing.assert_allclose(like.detach().numpy(), want["like"], atol=1e-6)
    np.testing.assert_allclose(click.detach().numpy(), want["click"], atol=1e-6)
    with pytest.raises(TypeError, match="takes 2 input"):
        serving(torch.from_numpy(sparse))
    with pytest.raises(ConfigError, match="unknown task 'nope'"):
        ServingModule(both, ["nope"])
    with pytest.raises(ConfigError, match="twice"):
        ServingModule(both, ["like", "like"])


def test_torchscript_round_trip_keeps_task_order_and_model_state(tmp_path: Path) -> None:
    model, _ = _build("ple")
    order = ["share", "click"]
    path = export_model(model, order, tmp_path / "sub" / "m.pt", "torchscript")
    assert path == tmp_path / "sub" / "m.pt"
    assert model.training  # the mode is restored after the export
    with pytest.raises(RuntimeError, match="call the model"):
        _ = model.shared_representation  # no traced tensor left on the model
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # loading and calling are silent
        exported = load_exported(path, "torchscript")
        probs = exported(*_batch(model.features, 2, seed=4))
    assert list(probs) == order
    assert exported.tasks == ("share", "click")
    assert exported.input_names == ("sparse", "dense")
    files = {"nomoretuning.json": ""}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        plain = torch.jit.load(str(path), _extra_files=files)
    assert json.loads(files["nomoretuning.json"])["tasks"] == order
    # a plain TorchScript server builds no autograd graph: its outputs convert to numpy
    outputs = plain(*(torch.as_tensor(x) for x in _batch(model.features, 2, seed=4)))
    assert not any(out.requires_grad for out in outputs)
    assert outputs[0].numpy().shape == (2,)
    assert all(p.requires_grad for p in model.parameters())  # the model still trains
    sparse, dense = _batch(model.features, 3, seed=5)
    assert list(exported(sparse, dense)) == order
    assert parity(model, order, path, "torchscript", sparse, dense) < 1e-6


def test_custom_example_and_default_tasks(tmp_path: Path) -> None:
    model, tasks = _build("shared_bottom")
    example = (torch.tensor([[1, 2], [3, 4]]), torch.randn(2, 2))
    path = export_model(model, None, tmp_path / "m.pt", "torchscript", example=example)
    exported = load_exported(path, "torchscript")
    assert exported.tasks == tuple(tasks)
    sparse, dense = _batch(model.features, 7, seed=2)
    assert parity(model, None, path, "torchscript", sparse, dense) < 1e-6


def test_unknown_format_and_bad_tasks(tmp_path: Path) -> None:
    model, _ = _build("mmoe")
    with pytest.raises(ConfigError, match=r"allowed: \['onnx', 'torchscript'\]") as info:
        export_model(model, None, tmp_path / "m.bin", "tflite")
    assert "\n" not in str(info.value)
    with pytest.raises(ConfigError, match="allowed"):
        load_exported(tmp_path / "m.bin", "savedmodel")
    with pytest.raises(ConfigError, match="unknown task"):
        export_model(model, ["click", "missing"], tmp_path / "m.pt", "torchscript")
    assert list(tmp_path.iterdir()) == []


def test_bad_inputs_to_the_loaded_model(artifacts: dict[tuple[str, str], Path]) -> None:
    for fmt in FORMATS:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # loading is silent
            exported = load_exported(artifacts[("mmoe", fmt)], fmt)
        with pytest.raises(ValueError, match=r"sparse must have shape \[B, 2\]"):
            exported(np.zeros((3, 1), dtype=np.int64), np.zeros((3, 2)))
        with pytest.raises(ValueError, match="same number of rows"):
            exported(np.zeros((3, 2), dtype=np.int64), np.zeros((2, 2)))
        with pytest.raises(ValueError, match="integer ids"):
            exported(np.zeros((3, 2)), np.zeros((3, 2)))
        with pytest.raises(ValueError, match="'dense' is required"):
            exported(np.zeros((3, 2), dtype=np.int64), None)
        dense_only = load_exported(artifacts[("dense_only", fmt)], fmt)
        with pytest.raises(ValueError, match="takes no 'sparse'"):
            dense_only(np.zeros((3, 1), dtype=np.int64), np.zeros((3, 300)))
        # A zero-width array for the missing input is accepted, int32 ids and float64 too.
        probs = dense_only(np.zeros((2, 0), dtype=np.int64), np.zeros((2, 300)))
        assert probs["click"].shape == (2,)
        probs = exported(np.zeros((2, 2), dtype=np.int32), np.zeros((2, 2), dtype=np.float64))
        assert probs["like"].dtype == np.float32
    with pytest.raises(FileNotFoundError):
        load_exported(artifacts[("mmoe", "onnx")].with_name("missing.onnx"), "onnx")


@pytest.mark.parametrize("fmt", FORMATS)
def test_failed_export_keeps_the_existing_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str
) -> None:
    model, tasks = _build("mmoe")
    path = tmp_path / f"model{SUFFIX[fmt]}"
    path.write_bytes(b"the previous export")

    def broken(*args: object, **kwargs: object) -> None:
        # Write something first, as a real exporter that dies halfway would.
        Path(str(args[2] if fmt == "onnx" else args[1])).write_bytes(b"half")
        raise RuntimeError("exporter crashed")

    if fmt == "onnx":
        monkeypatch.setattr(torch.onnx, "export", broken)
    else:
        monkeypatch.setattr(torch.jit, "save", broken)
    with pytest.raises(RuntimeError, match="exporter crashed"):
        export_model(model, tasks, path, fmt)
    assert path.read_bytes() == b"the previous export"
    assert [p.name for p in tmp_path.iterdir()] == [path.name]
    assert model.training


def test_missing_onnx_packages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model, _ = _build("mmoe")
    monkeypatch.setitem(sys.modules, "onnxscript", None)
    with pytest.raises(ConfigError, match=r"pip install 'nomoretuning\[export\]'"):
        export_model(model, None, tmp_path / "m.onnx", "onnx")
    assert list(tmp_path.iterdir()) == []
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    (tmp_path / "m.onnx").write_bytes(b"")
    with pytest.raises(ConfigError, match=r"'onnxruntime' package: pip install"):
        load_exported(tmp_path / "m.onnx", "onnx")


def test_onnx_export_is_silent_and_self_contained(tmp_path: Path) -> None:
    """A fresh process (the exporter's one-time log lines would be gone in this one)."""
    script = textwrap.dedent(
        f"""
        import torch
        from nomoretuning.models import FeatureConfig, SparseField, build_model
        from nomoretuning.serving.export import export_model
        cfg = FeatureConfig((SparseField("a", 3),), ("x",))
        model = build_model("single_score", cfg, ["click"], hidden_dims=(4,))
        export_model(model, None, {str(tmp_path / "m.onnx")!r}, "onnx")
        """
    )
    done = subprocess.run(
        [sys.executable, "-W", "default", "-c", script],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    assert done.stderr == ""
    assert [p.name for p in tmp_path.iterdir()] == ["m.onnx"]  # no external .data file
