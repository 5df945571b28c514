"""The causal context of the code running now: which request or event caused it.

A request binds its request id as the correlation id; a consumer binds the event it handles. publish()
reads this context, so every event carries the correlation id of the chain it belongs to and the id of
the event that caused it, without any caller passing them along.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from common.logging import log_context

if TYPE_CHECKING:
    from common.events import Envelope


@dataclass(frozen=True)
class Cause:
    correlation_id: str | None = None
    causation_id: str | None = None
    # The event being handled, when a consumer's handler runs: publish() continues its trace.
    envelope: Envelope | None = None


_NO_CAUSE = Cause()
_current: contextvars.ContextVar[Cause | None] = contextvars.ContextVar("cause", default=None)


def current_cause() -> Cause:
    return _current.get() or _NO_CAUSE


@contextmanager
def caused_by(
    *,
    correlation_id: str | None,
    causation_id: str | None = None,
    envelope: Envelope | None = None,
    **log_fields: object,
) -> Iterator[None]:
    token = _current.set(Cause(correlation_id, causation_id, envelope))
    try:
        with log_context(correlation_id=correlation_id, **log_fields):
            yield
    finally:
        _current.reset(token)
