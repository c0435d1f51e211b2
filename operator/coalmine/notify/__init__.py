"""Rollout notifications to webhooks: what a tick's transitions say, sent off the tick.

``Notifier.decided`` is the one call reconcile makes, after the status and Events are written:
it builds the notifications of the decision's transitions (``transitions``), renders them per
webhook (``payload``) and queues them (``sender``). It never blocks and never raises: a
notification that cannot be sent is counted and logged, and the rollout goes on.
"""

from __future__ import annotations

import logging
import os
from datetime import datetime

from coalmine.api import ModelDeployment
from coalmine.notify.metrics import NotificationCounts
from coalmine.notify.payload import render
from coalmine.notify.sender import Post, WebhookSender, http_post
from coalmine.notify.transitions import OPT_OUT, Notification, notifications
from coalmine.rollout.types import Decision
from coalmine.settings import OperatorSettings, Webhook
from coalmine.subject import Subject

log = logging.getLogger(__name__)

__all__ = ["OPT_OUT", "Notification", "Notifier", "notifications"]


class Notifier:
    """One sender per configured webhook."""

    def __init__(self, hooks: list[tuple[Webhook, WebhookSender, dict[str, str]]]) -> None:
        self.hooks = hooks

    @classmethod
    def from_settings(cls, settings: OperatorSettings) -> Notifier:
        """Senders for ``settings.notification_webhooks``; a named env var that is missing
        fails here, at startup, not at the first rollback."""
        hooks = []
        for hook in settings.notification_webhooks:
            url = hook.resolved_url(os.environ)
            post: Post = http_post(url, hook.timeout_seconds)
            sender = WebhookSender(
                url,
                post,
                queue_size=settings.notification_queue_size,
                attempts=settings.notification_attempts,
            )
            hooks.append((hook, sender, hook.auth_headers(os.environ)))
        return cls(hooks)

    def decided(
        self, subject: Subject, md: ModelDeployment, decision: Decision, now: datetime
    ) -> None:
        """Queue the notifications of ``decision``'s transitions; never raises."""
        if not self.hooks:
            return
        try:
            for notification in notifications(subject, md, decision, now):
                self._offer(notification)
        except Exception:
            log.exception("%s/%s: notifications not built", subject.ref.namespace, subject.ref.name)

    def _offer(self, notification: Notification) -> None:
        what = f"{notification.kind} {notification.namespace}/{notification.name}"
        for hook, sender, auth in self.hooks:
            if notification.kind in hook.events:
                body, content_type = render(notification, hook.format)
                sender.offer(body, {"Content-Type": content_type, **auth}, what)

    def counts(self) -> NotificationCounts:
        """A collector of every sender's counts, for the operator's ``/metrics``."""
        return NotificationCounts([sender for _, sender, _ in self.hooks])

    def close(self) -> None:
        for _, sender, _ in self.hooks:
            sender.close()
