"""The user data streams: order-events as Binance's executionReport, balance-events as outboundAccountPosition and
balanceUpdate, each to the connections of the user the event is about.

order.created carries the order's terms (side, type, time in force, quantity, price, client order id); the later
facts carry only what changed. So the terms of every open order are kept in memory (bounded: the oldest are
forgotten past STREAMS_OPEN_ORDERS), together with the executed quantity its fills add up to, and dropped once the
order is final. An order placed before this process started is reported with what its events carry.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable
from decimal import Decimal

from common.events import Envelope
from streams import payloads
from streams.hub import Hub
from streams.market import now_ms
from streams.payloads import OrderView, iso_ms

logger = logging.getLogger(__name__)

ORDER_TYPES = frozenset({"order.created", "order.accepted", "order.rejected", "order.filled", "order.cancelled"})
BALANCE_TYPES = frozenset({"balance.reserved", "balance.released", "balance.settled", "balance.credited"})
FINAL = frozenset({"FILLED", "CANCELED", "REJECTED", "EXPIRED"})


class UserEvents:
    def __init__(self, hub: Hub, *, max_orders: int = 100_000, clock: Callable[[], int] = now_ms):
        self.hub = hub
        self.max_orders = max_orders
        self.clock = clock
        self.orders: OrderedDict[str, OrderView] = OrderedDict()
        self.reports = 0

    def on_events(self, envelopes: list[Envelope]) -> None:
        for envelope in envelopes:
            if envelope.type in ORDER_TYPES:
                self._order_event(envelope)
            elif envelope.type in BALANCE_TYPES:
                self._balance_event(envelope)

    def _order_event(self, envelope: Envelope) -> None:
        data, order_id = envelope.data, envelope.data["order_id"]
        at = iso_ms(envelope.time) or self.clock()
        if envelope.type == "order.created":
            self._remember(order_id, OrderView.from_created(data, time_ms=at))
            return
        view = self.orders.get(order_id) or OrderView(symbol=data["symbol"])
        view.learn(data)
        transaction_ms = at
        if envelope.type == "order.accepted":
            view.working_ms = at
            status = "NEW"
        elif envelope.type == "order.filled":
            view.executed_qty = _given(data, "executed_qty", view.executed_qty + Decimal(data["qty"]))
            view.cumulative_quote_qty = _given(
                data, "cumulative_quote_qty", view.cumulative_quote_qty + Decimal(data["quote_qty"])
            )
            if view.quantity is None:  # a MARKET BUY by quote amount: its quantity is what it bought
                view.quantity = view.executed_qty + Decimal(data["remaining_qty"])
            transaction_ms = iso_ms(data["executed_at"]) or at
            status = data["status"]
        elif envelope.type == "order.cancelled":
            status = data["status"]
        else:
            status = "REJECTED"
        if status in FINAL:
            self.orders.pop(order_id, None)
        else:
            self._remember(order_id, view)
        user_id = data["user_id"]
        if not self.hub.has_user(user_id):
            return
        report = payloads.execution_report(
            view, envelope.type, data, event_ms=self.clock(), transaction_ms=transaction_ms
        )
        if report is not None:
            self.reports += 1
            self.hub.publish_user(user_id, report)

    def _remember(self, order_id: str, view: OrderView) -> None:
        self.orders[order_id] = view
        self.orders.move_to_end(order_id)
        while len(self.orders) > self.max_orders:
            self.orders.popitem(last=False)

    def _balance_event(self, envelope: Envelope) -> None:
        data = envelope.data
        user_id = data["user_id"]
        if not self.hub.has_user(user_id):
            return
        now = self.clock()
        at = iso_ms(envelope.time) or now
        if envelope.type == "balance.credited":
            self.hub.publish_user(user_id, payloads.balance_update(data, event_ms=now, clear_ms=at))
        position = payloads.account_position(data, event_ms=now, update_ms=at)
        if position is not None:
            self.hub.publish_user(user_id, position)


def _given(data: dict, key: str, otherwise: Decimal) -> Decimal:
    """A running figure the event states itself (order_svc may send it), else the one folded here."""
    value = data.get(key)
    return Decimal(value) if value not in (None, "") else otherwise
