"""Outputs of every model: keys, shapes, gates, shared representation, determinism, copying."""

from __future__ import annotations

import copy
import pickle

import pytest
import torch
from models_helpers import FEATURES, TASKS, batch, small_model

from nomoretuning.models import MODEL_NAMES, FeatureConfig, SparseField, build_model

GATED = ("omoe", "mmoe", "ple")


@pytest.mark.parametrize("name", MODEL_NAMES)
@pytest.mark.parametrize("tasks", [("a",), ("a", "b", "c")])
def test_one_logit_vector_per_task(name: str, tasks: tuple[str, ...]) -> None:
    model = small_model(name, tasks)
    out = model(*batch(5))
    assert model.tasks == tasks
    assert list(out) == list(tasks)
    for logits in out.values():
        assert logits.shape == (5,)
        assert logits.dtype == torch.float32
        assert torch.isfinite(logits).all()


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_default_configuration_runs(name: str) -> None:
    model = build_model(name, FEATURES, TASKS)
    out = model(*batch(3))
    assert {k: v.shape for k, v in out.items()} == {"a": (3,), "b": (3,)}


@pytest.mark.parametrize(
    "features",
    [
        FeatureConfig(sparse=(SparseField("user", 5),)),  # no dense column: dense is [B, 0]
        FeatureConfig(dense=("x1", "x2", "x3")),  # no sparse field: sparse is [B, 0]
    ],
    ids=["sparse-only", "dense-only"],
)
@pytest.mark.parametrize("name", MODEL_NAMES)
def test_sparse_only_and_dense_only_inputs(name: str, features: FeatureConfig) -> None:
    model = small_model(name, features=features)
    out = model(*batch(4, features))
    assert all(v.shape == (4,) for v in out.values())


def test_embedding_layout_is_fields_then_dense() -> None:
    model = small_model("shared_bottom")
    sparse, dense = batch(4)
    x = model.embedding(sparse, dense)
    tables = model.embedding.tables
    assert torch.equal(x[:, 0:3], tables[0].weight[sparse[:, 0]])
    assert torch.equal(x[:, 3:6], tables[1].weight[sparse[:, 1]])
    assert torch.equal(x[:, 6:], dense)


@pytest.mark.parametrize("name", GATED)
def test_gate_weights_are_distributions(name: str) -> None:
    model = small_model(name, ("a", "b", "c"))
    model(*batch(6))
    gates = model.gate_weights
    assert gates
    for weights in gates.values():
        assert weights.shape[0] == 6
        assert (weights >= 0).all()
        torch.testing.assert_close(weights.sum(-1), torch.ones(6))


def test_gate_names_and_sizes() -> None:
    mmoe = small_model("mmoe")
    mmoe(*batch(2))
    assert {k: tuple(v.shape) for k, v in mmoe.gate_weights.items()} == {
        "a": (2, 3),
        "b": (2, 3),
    }
    omoe = small_model("omoe")
    omoe(*batch(2))
    assert omoe.gate_weights["a"] is omoe.gate_weights["b"]
    ple = small_model("ple", ("a", "b", "c"), num_levels=3)  # s=1, n=2
    ple(*batch(2))
    expected = {f"level{d}/{t}": (2, 3) for d in range(3) for t in ("a", "b", "c")}
    expected |= {"level0/shared": (2, 5), "level1/shared": (2, 5)}
    assert {k: tuple(v.shape) for k, v in ple.gate_weights.items()} == expected


@pytest.mark.parametrize("name", ["shared_bottom", "single_task", "single_score"])
def test_models_without_gates_have_no_gate_weights(name: str) -> None:
    model = small_model(name)
    assert model.gate_weights == {}
    model(*batch(2))
    assert model.gate_weights == {}


@pytest.mark.parametrize(
    ("name", "shape"),
    [
        ("shared_bottom", (4, 6)),
        ("omoe", (4, 6)),
        ("mmoe", (4, 3, 6)),
        ("ple", (4, 2, 6)),
        ("single_task", (4, 2, 6)),
        ("single_score", (4, 4)),
    ],
)
def test_shared_representation_shape_and_gradient(name: str, shape: tuple[int, ...]) -> None:
    model = small_model(name)
    out = model(*batch(4))
    rep = model.shared_representation
    assert tuple(rep.shape) == shape
    for k, task in enumerate(model.tasks):
        (grad,) = torch.autograd.grad(out[task].sum(), rep, retain_graph=True)
        assert grad.abs().sum() > 0
        if name == "single_task":  # each task reaches only its own slot
            others = [j for j in range(len(model.tasks)) if j != k]
            assert (grad[:, others] == 0).all()


@pytest.mark.parametrize("name", ["shared_bottom", "omoe", "single_score"])
def test_shared_representation_carries_all_of_the_shared_gradient(name: str) -> None:
    # In these models every shared parameter before the representation reaches the outputs only
    # through it, so the chain rule through it gives the full gradient (what EMTL relies on).
    model = small_model(name)
    out = model(*batch(8))
    after = {id(p) for p in model.output.parameters()} if name == "single_score" else set()
    shared = [p for p in model.shared_parameters() if id(p) not in after]
    for task in model.tasks:
        loss = out[task].pow(2).mean()
        direct = torch.autograd.grad(loss, shared, retain_graph=True)
        (via_rep,) = torch.autograd.grad(loss, model.shared_representation, retain_graph=True)
        chained = torch.autograd.grad(
            model.shared_representation, shared, grad_outputs=via_rep, retain_graph=True
        )
        for a, b in zip(direct, chained, strict=True):
            torch.testing.assert_close(a, b)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_attributes_before_the_first_forward(name: str) -> None:
    model = small_model(name)
    with pytest.raises(RuntimeError, match="call the model"):
        _ = model.shared_representation
    if name in GATED:
        with pytest.raises(RuntimeError, match="call the model"):
            _ = model.gate_weights


def test_single_score_returns_one_tensor_for_every_task() -> None:
    model = small_model("single_score", ("a", "b", "c"))
    out = model(*batch(3))
    assert out["a"] is out["b"] is out["c"]


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_same_seed_same_model_and_outputs(name: str) -> None:
    def run(seed: int) -> dict[str, torch.Tensor]:
        torch.manual_seed(seed)
        model = small_model(name, dropout=0.3)
        model.train()
        return model(*batch(6))

    first, second, other = run(7), run(7), run(8)
    for task in TASKS:
        assert torch.equal(first[task], second[task])
    assert any(not torch.equal(first[t], other[t]) for t in TASKS)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_rows_are_independent_in_eval_mode(name: str) -> None:
    model = small_model(name, batch_norm=True, dropout=0.2).eval()
    sparse, dense = batch(5)
    full = model(sparse, dense)
    for i in (0, 3):
        row = model(sparse[i : i + 1], dense[i : i + 1])
        for task in TASKS:
            torch.testing.assert_close(row[task], full[task][i : i + 1])


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_dropout_only_in_train_mode(name: str) -> None:
    model = small_model(name, dropout=0.5)
    sparse, dense = batch(8)
    model.eval()
    assert torch.equal(model(sparse, dense)["a"], model(sparse, dense)["a"])
    model.train()
    torch.manual_seed(0)
    first = model(sparse, dense)["a"]
    assert not torch.equal(first, model(sparse, dense)["a"])


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_batch_norm_option(name: str) -> None:
    plain = small_model(name)
    normed = small_model(name, batch_norm=True)
    has_bn = [isinstance(m, torch.nn.BatchNorm1d) for m in normed.modules()]
    assert any(has_bn)
    assert not any(isinstance(m, torch.nn.BatchNorm1d) for m in plain.modules())
    normed.train()
    normed(*batch(4))
    normed.eval()
    normed(*batch(4))


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_state_dict_roundtrip_deepcopy_and_pickle_after_forward(name: str) -> None:
    model = small_model(name).eval()
    sparse, dense = batch(4)
    expected = model(sparse, dense)
    clone = small_model(name).eval()
    clone.load_state_dict(model.state_dict())
    copied = copy.deepcopy(model)
    unpickled = pickle.loads(pickle.dumps(model))
    for other in (clone, copied, unpickled):
        got = other(sparse, dense)
        for task in TASKS:
            torch.testing.assert_close(got[task], expected[task])
    assert set(model.state_dict()) == set(clone.state_dict())


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_follows_the_parameter_dtype(name: str) -> None:
    model = small_model(name).double()
    sparse, dense = batch(3)
    out = model(sparse.to(torch.int32), dense)  # float32 dense is cast to the model's dtype
    assert all(v.dtype == torch.float64 for v in out.values())
    assert model.regularization().dtype == torch.float64


def test_initialization() -> None:
    torch.manual_seed(0)
    model = small_model("shared_bottom", bottom_dims=(256,), embedding_init_std=1e-4)
    emb = model.embedding.tables[0].weight
    assert emb.abs().max() < 1e-3
    first = model.bottom.layers[0]
    assert isinstance(first, torch.nn.Linear)
    assert torch.equal(first.bias, torch.zeros_like(first.bias))
    xavier_std = (2.0 / (8 + 256)) ** 0.5
    assert abs(float(first.weight.detach().std()) - xavier_std) < 0.15 * xavier_std


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("name", MODEL_NAMES)
def test_runs_on_cuda(name: str) -> None:
    model = small_model(name).cuda()
    sparse, dense = batch(4)
    out = model(sparse.cuda(), dense.cuda())
    assert all(v.device.type == "cuda" for v in out.values())
    assert model.regularization().device.type == "cuda"
    assert model.shared_representation.device.type == "cuda"
