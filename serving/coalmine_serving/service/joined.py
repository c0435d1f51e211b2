"""The receipts this pod has joined a label with, so no prediction is counted twice here.

Bounded: at most ``capacity`` receipts (16-byte MACs) are remembered. When it is full the
oldest entry is forgotten, and from then on a receipt issued at or before the newest forgotten
one is refused as expired: this pod can no longer prove it has not counted it, and a label
refused is better than a label counted twice. It lives on the event loop thread only, so it
needs no lock.
"""

from __future__ import annotations

from collections import OrderedDict


class JoinedReceipts:
    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._issued_at: OrderedDict[bytes, int] = OrderedDict()  # MAC -> issue time
        self.forgotten_before = -1
        """Receipts issued at or before this (unix seconds) can no longer be told apart."""

    def __len__(self) -> int:
        return len(self._issued_at)

    def __contains__(self, mac: object) -> bool:
        return mac in self._issued_at

    def too_old(self, issued_at: int) -> bool:
        return issued_at <= self.forgotten_before

    def add(self, mac: bytes, issued_at: int) -> None:
        self._issued_at[mac] = issued_at
        while len(self._issued_at) > self._capacity:
            _, forgotten = self._issued_at.popitem(last=False)
            self.forgotten_before = max(self.forgotten_before, forgotten)
