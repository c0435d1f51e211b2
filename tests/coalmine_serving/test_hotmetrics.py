from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from coalmine_serving import contract as c
from coalmine_serving.hotmetrics import HotCollector, LocalCounter


def _scrape(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = generate_latest(registry).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_histogram_buckets_are_cumulative_and_inclusive_with_count_and_sum() -> None:
    registry = CollectorRegistry()
    hot = HotCollector(("m", "1", "stable", "r1"))
    registry.register(hot)
    hist = hot.histogram(c.PREDICTION_VALUE, [-1.0, 0.0, 1.0])
    for value in (-5.0, -1.0, 0.5, 1.0, 7.0):
        hist.observe(value)
    samples = _scrape(registry)
    base = (("model", "m"), ("revision", "r1"), ("variant", "stable"), ("version", "1"))

    def bucket(le: str) -> float:
        return samples[("coalmine_prediction_value_bucket", tuple(sorted((*base, ("le", le)))))]

    # le is "less or equal": -1.0 falls in the -1.0 bucket, 1.0 in the 1.0 bucket.
    assert [bucket(le) for le in ("-1.0", "0.0", "1.0", "+Inf")] == [2, 2, 4, 5]
    assert samples[("coalmine_prediction_value_count", base)] == 5
    assert samples[("coalmine_prediction_value_sum", base)] == 2.5


def test_counter_family_exposes_each_extra_label_value() -> None:
    registry = CollectorRegistry()
    hot = HotCollector(("m", "1", "canary", "r1"))
    registry.register(hot)
    family = hot.counter_family(c.REQUESTS_TOTAL)
    family.setdefault("success", LocalCounter()).inc(3)
    samples = _scrape(registry)
    key = (
        ("model", "m"), ("outcome", "success"), ("revision", "r1"), ("variant", "canary"),
        ("version", "1"),
    )  # fmt: skip
    assert samples[("coalmine_requests_total", key)] == 3
