"""Categorical vocabularies (train only, min count, OOV = 0) and dense standardization."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nomoretuning.data import (
    OOV_INDEX,
    CategoricalEncoder,
    DenseScaler,
    FeatureEncoder,
    Schema,
    to_tokens,
)
from nomoretuning.errors import DataError
from nomoretuning.models.features import FeatureConfig, SparseField


def test_vocabulary_is_sorted_by_count_then_token_with_oov_at_zero() -> None:
    train = pd.Series(["b", "c", "a", "c", "b", "d", "c", "a"])
    enc = CategoricalEncoder().fit(train)
    assert OOV_INDEX == 0
    # c x3, then a and b x2 (tie broken by token), then d x1.
    assert enc.vocabulary == ("c", "a", "b", "d")
    assert enc.counts == (3, 2, 2, 1)
    assert enc.vocab_size == 5
    assert enc.transform(pd.Series(["c", "a", "b", "d"])).tolist() == [1, 2, 3, 4]


def test_vocabulary_comes_from_training_values_only() -> None:
    enc = CategoricalEncoder().fit(pd.Series(["x", "y", "x"]))
    # "z" is frequent outside train but unseen in train: OOV.
    out = enc.transform(pd.Series(["z", "z", "z", "x", "y"]))
    assert out.tolist() == [0, 0, 0, 1, 2]
    assert out.dtype == np.int64
    assert enc.vocab_size == 3


def test_min_count_sends_rare_tokens_and_missing_values_to_oov() -> None:
    train = pd.Series(["a"] * 3 + ["b"] * 2 + ["c"] + [None, None, None])
    enc = CategoricalEncoder(min_count=2).fit(train)
    assert enc.vocabulary == ("a", "b")  # missing values are never tokens
    assert enc.transform(pd.Series(["a", "b", "c", None, np.nan])).tolist() == [1, 2, 0, 0, 0]
    with pytest.raises(DataError, match="min_count must be a positive integer, got 0"):
        CategoricalEncoder(min_count=0)


def test_tokens_agree_across_text_int_and_float_columns() -> None:
    enc = CategoricalEncoder().fit(pd.Series(["7", "12", "12"]))
    assert enc.transform(pd.Series([12, 7, 5])).tolist() == [1, 2, 0]
    assert enc.transform(pd.Series([12.0, np.nan, 7.0])).tolist() == [1, 0, 2]
    assert to_tokens(pd.Series([1.5, np.inf])).tolist() == ["1.5", pd.NA]


def test_categorical_encoder_round_trips_through_json() -> None:
    enc = CategoricalEncoder(min_count=2).fit(pd.Series(list("aabbbc")))
    again = CategoricalEncoder.from_dict(json.loads(json.dumps(enc.to_dict())))
    values = pd.Series(list("abcz"))
    assert again.vocabulary == enc.vocabulary
    assert again.transform(values).tolist() == enc.transform(values).tolist()
    with pytest.raises(RuntimeError, match="before fit"):
        CategoricalEncoder().transform(values)


@settings(max_examples=40, deadline=None)
@given(
    train=st.lists(st.sampled_from("abcdefg"), min_size=1, max_size=40),
    other=st.lists(st.sampled_from("abcdefghij"), max_size=20),
    min_count=st.integers(1, 4),
)
def test_index_is_positive_exactly_for_tokens_frequent_in_train(
    train: list[str], other: list[str], min_count: int
) -> None:
    enc = CategoricalEncoder(min_count).fit(pd.Series(train))
    codes = enc.transform(pd.Series(other, dtype=object))
    for token, code in zip(other, codes.tolist(), strict=True):
        assert (code > 0) == (train.count(token) >= min_count)
        assert 0 <= code < enc.vocab_size


def test_dense_scaler_uses_train_statistics_and_maps_missing_to_zero() -> None:
    train = np.array([[1.0, 5.0, np.nan], [3.0, 5.0, np.nan], [np.nan, 5.0, np.nan]])
    sc = DenseScaler().fit(train)
    np.testing.assert_allclose(sc.mean, [2.0, 5.0, 0.0])
    np.testing.assert_allclose(sc.std, [1.0, 1.0, 1.0])  # constant and all-NaN columns: std 1
    out = sc.transform(np.array([[5.0, 6.0, 2.0], [np.nan, np.inf, np.nan]]))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [[3.0, 1.0, 2.0], [0.0, 0.0, 0.0]])
    again = DenseScaler.from_dict(json.loads(json.dumps(sc.to_dict())))
    np.testing.assert_allclose(again.transform(train), sc.transform(train))


def test_dense_scaler_standardizes_training_rows() -> None:
    x = np.random.default_rng(0).normal(3.0, 2.0, size=(500, 2))
    z = DenseScaler().fit(x).transform(x)
    np.testing.assert_allclose(z.mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(z.std(axis=0), 1.0, atol=1e-5)


def test_feature_encoder_builds_the_feature_config() -> None:
    schema = Schema(sparse=["uid", "item"], dense=["price"], labels=["click"], group="uid")
    train = pd.DataFrame(
        {
            "uid": ["u1", "u1", "u2", "u3"],
            "item": ["i1", "i2", "i1", "i1"],
            "price": ["1.0", "3.0", "", None],  # text numbers; empty and None are missing
            "click": [0, 1, 0, 1],
        }
    )
    enc = FeatureEncoder(schema, min_count={"uid": 2}).fit(train)
    assert enc.features == FeatureConfig(
        sparse=(SparseField("uid", 2), SparseField("item", 3)), dense=("price",)
    )
    sparse, dense = enc.transform(
        pd.DataFrame({"uid": ["u1", "u2"], "item": ["i2", "i9"], "price": [2.0, np.nan]})
    )
    assert sparse.tolist() == [[1, 2], [0, 0]]
    assert dense.tolist() == [[0.0], [0.0]]
    again = FeatureEncoder.from_dict(json.loads(json.dumps(enc.to_dict())))
    assert again.features == enc.features
    with pytest.raises(DataError, match="'nope', which is not a sparse column"):
        FeatureEncoder(schema, min_count={"nope": 2})


def test_non_numeric_dense_value_is_reported_with_row_and_fix() -> None:
    schema = Schema(dense=["price"], labels=["click"])
    frame = pd.DataFrame({"price": ["1.5", "cheap"], "click": [0, 1]})
    with pytest.raises(
        DataError,
        match=r"t\.csv: dense column 'price' has non-numeric value "
        r"'cheap' at data row 2; .*list the column as sparse",
    ):
        FeatureEncoder(schema).fit(frame, "t.csv")
