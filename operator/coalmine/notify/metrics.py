"""The notifications' counts on the operator's ``/metrics``, read at scrape time from each
sender's ``Counts`` (no second bookkeeping to keep in step). One series per webhook and
result: the webhooks are the operator's own settings, so the count is bounded by them, and
a webhook is named by scheme and host only, as in the logs (a chat webhook's path is its
secret)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import fields

from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from coalmine.notify.sender import Counts, WebhookSender

NAME = "coalmine_notifications"


class NotificationCounts(Collector):
    """``coalmine_notifications_total{webhook, result}``; result is one of ``Counts``' fields:
    sent, retried, dropped_full, dropped_failed."""

    def __init__(self, senders: list[WebhookSender]) -> None:
        self._senders = senders

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = CounterMetricFamily(
            NAME, "Webhook notifications by result.", labels=["webhook", "result"]
        )
        for index, sender in enumerate(self._senders):
            webhook = f"{index}:{sender.where}"  # two hooks may share a host
            for field in fields(Counts):
                family.add_metric([webhook, field.name], getattr(sender.counts, field.name))
        yield family
