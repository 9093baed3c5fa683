"""Strict JSON: what has no JSON form is found by location, rendered by one rule, never serialised bare."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sagemaker_executor.domain import strictjson
from sagemaker_executor.domain.strictjson import first_unfit, strict_value

NON_FINITE = [float("nan"), float("inf"), float("-inf")]
LONE_SURROGATES = ["\ud800", "\udbff", "\udc00", "\udce9", "\udfff"]

# Text with lone surrogates mixed in, and floats with NaN and the infinities: everything json.loads
# can produce that JSON itself cannot carry.
_text = st.text(st.one_of(st.characters(), st.sampled_from(LONE_SURROGATES)), max_size=12)
_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(NON_FINITE),
    _text,
)
JSON_LIKE = st.recursive(
    _scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.tuples(children, children),
        st.dictionaries(_text, children, max_size=4),
    ),
    max_leaves=25,
)


def _refuse_constant(token: str) -> Any:
    raise AssertionError(f"bare {token} token in published JSON")


def assert_strict_json(data: bytes) -> Any:
    """``data`` is JSON as strict readers take it: no NaN/Infinity token, Unicode text only."""
    # parse_constant is called for exactly the bare tokens NaN, Infinity and -Infinity.
    decoded = json.loads(data.decode("utf-8"), parse_constant=_refuse_constant)
    assert first_unfit(decoded) is None, "a lone surrogate survived"
    return decoded


@settings(max_examples=300, deadline=None, database=None)
@given(JSON_LIKE)
def test_encode_never_writes_a_bare_token_or_a_lone_surrogate(value: Any) -> None:
    decoded = assert_strict_json(strictjson.encode(value))
    assert decoded == json.loads(json.dumps(strict_value(value)))


@settings(max_examples=200, deadline=None, database=None)
@given(JSON_LIKE)
def test_clean_values_are_written_as_json_dumps_writes_them(value: Any) -> None:
    if first_unfit(value) is None:
        assert strictjson.dumps(value) == json.dumps(value, separators=(",", ":"))


@settings(max_examples=200, deadline=None, database=None)
@given(JSON_LIKE)
def test_rendered_values_have_nothing_left_to_find(value: Any) -> None:
    assert first_unfit(strict_value(value)) is None


@pytest.mark.parametrize(
    ("value", "rendered"),
    [
        (float("nan"), "NaN"),
        (float("inf"), "Infinity"),
        (float("-inf"), "-Infinity"),
        ({"lr": [1.5, float("nan")]}, {"lr": [1.5, "NaN"]}),
        ("caf\udce9", "caf\ufffd"),
        ({"k\ud800": "v"}, {"k\ufffd": "v"}),
        ("😀 é", "😀 é"),  # astral and other real characters are text, and stay
        ((1, "x"), [1, "x"]),
    ],
)
def test_the_one_rendering_rule(value: Any, rendered: Any) -> None:
    assert strict_value(value) == rendered


def test_dumps_writes_strings_where_json_dumps_writes_bare_tokens() -> None:
    value = {"a": float("nan"), "b": [float("inf"), float("-inf")], "c": "caf\udce9", "d": 1.5}
    assert json.dumps(value).count("NaN") == 1  # what the service used to publish
    assert strictjson.dumps(value) == '{"a":"NaN","b":["Infinity","-Infinity"],"c":"caf\\ufffd","d":1.5}'


def test_unserialisable_values_still_raise_type_error() -> None:
    with pytest.raises(TypeError):
        strictjson.dumps({"x": object()})


@pytest.mark.parametrize(
    ("value", "location", "fragment"),
    [
        ({"a": 1, "b": {"c": [0, float("nan")]}}, ("b", "c", 1), "got NaN"),
        ([float("-inf")], (0,), "got -Infinity"),
        ({"x": "ok", "y": "caf\udce9"}, ("y",), "character 4 is a lone surrogate '\\udce9'"),
        ({"k\udce9": float("nan")}, ("k\udce9",), "the key is not valid Unicode text"),  # key before value
        ({"first": "\ud800", "then": float("nan")}, ("first",), "lone surrogate"),  # document order
        ({"first": float("nan"), "then": "\ud800"}, ("first",), "NaN"),
        ({1: float("nan")}, None, ""),  # under a non-string key: that key is the reader's problem
        ("fine", None, ""),
        (math.pi, None, ""),
    ],
)
def test_first_unfit_names_the_place_in_document_order(value: Any, location: Any, fragment: str) -> None:
    found = first_unfit(value)
    if location is None:
        assert found is None
    else:
        assert found is not None and found[0] == location and fragment in found[1]


def test_numbers_can_be_left_to_the_caller() -> None:
    assert first_unfit({"n": float("nan")}, numbers=False) is None
    assert first_unfit({"n": float("nan"), "t": "\udfff"}, numbers=False) == (
        ("t",),
        strictjson.text_problem("\udfff"),
    )


def test_any_depth_is_walked_without_recursion() -> None:
    deep: Any = float("nan")
    for _ in range(50_000):
        deep = [deep]
    found = first_unfit(deep)
    assert found is not None and len(found[0]) == 50_000
