"""Input features: the ``--input-features`` syntax and its limits, and their histograms."""

from __future__ import annotations

import doctest

import numpy as np
import pytest
from pydantic import ValidationError

from coalmine_serving import contract as c
from coalmine_serving.cli import main
from coalmine_serving.contract import InputFeature, format_input_features, parse_input_features
from coalmine_serving.hotmetrics import SMALL_BATCH, FeatureHistograms
from coalmine_serving.settings import load_settings
from tests.coalmine_serving.http.test_app import ROW, _infer_body, client_for, samples

TWO = "sepal_length=0:4.5,5.5,6.5;petal_width=3:0.5,1.5"


def test_the_contract_doctests_hold() -> None:
    assert doctest.testmod(c).failed == 0


def test_the_flag_round_trips_through_the_operator_s_writer() -> None:
    features = parse_input_features(" sepal_length = 0 : 4.5, 5.5,6.5 ;petal_width=3:0.5,1.5;")
    assert features == [
        InputFeature("sepal_length", 0, (4.5, 5.5, 6.5)),
        InputFeature("petal_width", 3, (0.5, 1.5)),
    ]
    written = format_input_features(features)
    assert written == "petal_width=3:0.5,1.5;sepal_length=0:4.5,5.5,6.5"  # sorted by name
    assert parse_input_features(written) == sorted(features, key=lambda f: f.name)
    assert parse_input_features("") == []


SIXTEEN = ";".join(f"f{i}={i}:1" for i in range(c.MAX_INPUT_FEATURES))


@pytest.mark.parametrize(
    "text,message",
    [
        ("sepal_length:4.5", "write name=index:edge,edge,..."),
        ("sepal length=0:1", "name must match"),
        ("a;b=0:1", "write name=index"),
        ("x=-1:1", "index '-1' is not 0..999999"),
        ("x=1000000:1", "is not 0..999999"),
        ("x=٣:1", "is not 0..999999"),  # an Arabic-Indic three: a digit, but not ours
        ("x=0:1,two", "edges '1,two' are not numbers"),
        ("x=0:", "are not numbers"),
        ("x=0:1,inf", "edges must be finite"),
        ("x=0:nan", "edges must be finite"),
        ("x=0:2,1", "edges must be strictly increasing"),
        ("x=0:1,1", "edges must be strictly increasing"),
        ("x=0:" + ",".join(str(i) for i in range(21)), "21 edges, at most 20"),
        (SIXTEEN + ";extra=99:1", "17 given, at most 16"),
        ("x=0:1;x=1:1", "name x given twice"),
        ("x=0:1;y=0:1", "index 0 given twice"),
    ],
)
def test_a_bad_flag_is_refused_saying_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(".", r"\.")):
        parse_input_features(text)
    with pytest.raises(ValidationError, match="input_features"):
        load_settings(input_features=text)


def test_the_limits_themselves_are_accepted() -> None:
    edges = ",".join(str(i) for i in range(c.MAX_INPUT_FEATURE_EDGES))
    assert len(parse_input_features(SIXTEEN)) == c.MAX_INPUT_FEATURES
    assert len(parse_input_features(f"x=999999:{edges}")[0].edges) == c.MAX_INPUT_FEATURE_EDGES


def test_environment_and_flag_configure_the_features(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("COALMINE_SERVING_INPUT_FEATURES", TWO)
    assert [f.name for f in load_settings().input_features] == ["sepal_length", "petal_width"]
    assert load_settings(input_features="a=1:2").input_features == [InputFeature("a", 1, (2.0,))]
    # Given in code, the list goes through the same checks as the flag.
    with pytest.raises(ValidationError, match="strictly increasing"):
        load_settings(input_features=[InputFeature("a", 0, (2.0, 1.0))])
    # The command line refuses a bad flag before loading anything, naming the setting.
    assert main(["serve", "--input-features", "a=0:2,1"]) == 2
    assert "input_features" in capsys.readouterr().err


def _counts(hist: FeatureHistograms) -> dict[str, list[int]]:
    return {name: list(h.counts) for name, h in hist.features.items()}


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
def test_rows_one_at_a_time_and_in_a_batch_count_alike(dtype: type) -> None:
    features = parse_input_features("a=0:1,2,3;c=2:-1,0,1")
    rng = np.random.default_rng(7)
    # Values exactly on the edges included: they belong to the edge's bucket (le) both ways.
    rows = np.concatenate([rng.integers(-3, 5, (200, 3)), [[1, 0, 0], [3, 9, -1]]]).astype(dtype)
    assert len(rows) > SMALL_BATCH
    one_by_one, batched = FeatureHistograms(features), FeatureHistograms(features)
    for row in rows:
        one_by_one.observe_rows(row[None, :])
    batched.observe_rows(rows)
    assert _counts(one_by_one) == _counts(batched)
    expected_a = np.bincount(np.searchsorted([1, 2, 3], rows[:, 0], side="left"), minlength=4)
    assert _counts(batched)["a"] == expected_a.tolist()
    for name, index in (("a", 0), ("c", 2)):
        assert batched.features[name].count == len(rows)
        assert batched.features[name].sum == pytest.approx(float(rows[:, index].sum()))


def test_rows_that_cannot_be_bucketed_are_skipped_not_refused() -> None:
    hist = FeatureHistograms(parse_input_features("a=0:1;far=9:1"))
    hist.observe_rows(np.array([["x", "y"]], dtype=object))  # a model taking strings
    hist.observe_rows(np.array([0.5, 2.0]))  # not 2-D
    assert _counts(hist) == {"a": [0, 0], "far": [0, 0]}
    hist.observe_rows(np.array([[0.5, 2.0]]))  # the model has 2 columns: "far" stays empty
    hist.observe_rows(np.zeros((SMALL_BATCH + 1, 2)))
    assert _counts(hist) == {"a": [SMALL_BATCH + 2, 0], "far": [0, 0]}


def _input_buckets(client) -> dict[tuple[str, str], float]:  # type: ignore[no-untyped-def]
    return {
        (dict(labels)["feature"], dict(labels)["le"]): value
        for (name, labels), value in samples(client).items()
        if name == c.INPUT_FEATURE.series("bucket")
    }


def test_served_requests_are_bucketed_and_refused_ones_are_not(artifacts) -> None:  # type: ignore[no-untyped-def]
    with client_for(artifacts["onnx_clf"], input_features=TWO) as client:
        # Every configured feature is exposed at 0 before any request.
        assert set(_input_buckets(client).values()) == {0.0}
        rows = [ROW, [5.0, 0.0, 0.0, 1.5], [7.0, 0.0, 0.0, 3.0]]  # ROW: 0.9, ..., 0.1
        assert client.post("/v2/models/iris/infer", json=_infer_body(rows)).status_code == 200
        assert client.post("/v1/models/iris:predict", json={"instances": [ROW]}).status_code == 200
        bad = client.post("/v2/models/iris/infer", json=_infer_body([[1.0, 2.0]]))
        assert bad.status_code == 400
        buckets = _input_buckets(client)
    assert {le: n for (f, le), n in buckets.items() if f == "sepal_length"} == {
        "4.5": 2.0, "5.5": 3.0, "6.5": 3.0, "+Inf": 4.0,
    }  # fmt: skip
    # 1.5 sits on an edge: it counts in the 1.5 bucket (le means "less or equal").
    assert {le: n for (f, le), n in buckets.items() if f == "petal_width"} == {
        "0.5": 2.0, "1.5": 3.0, "+Inf": 4.0,
    }  # fmt: skip
    assert {feature for feature, _ in buckets} == {"sepal_length", "petal_width"}


def test_without_input_features_no_input_series_exist(artifacts) -> None:  # type: ignore[no-untyped-def]
    with client_for(artifacts["onnx_clf"]) as client:
        assert client.post("/v2/models/iris/infer", json=_infer_body([ROW])).status_code == 200
        assert _input_buckets(client) == {}
        assert c.INPUT_FEATURE.name not in client.get("/metrics").text
