"""Every write of order_svc, split by use case: placement, the saga's replies and deadlines, cancel, fills."""

from orders.services.cancel import order_cancel, orders_cancel_open, orders_expire_unfilled_immediate
from orders.services.fills import Trade, trades_apply
from orders.services.placement import OrderPlan, order_check, order_place
from orders.services.sagas import (
    SagaReply,
    saga_replies_apply,
    saga_reservation_confirm,
    saga_reservation_fail,
    saga_retry_step,
    sagas_expire_overdue,
)

__all__ = [
    "OrderPlan",
    "SagaReply",
    "Trade",
    "order_cancel",
    "order_check",
    "order_place",
    "orders_cancel_open",
    "orders_expire_unfilled_immediate",
    "saga_replies_apply",
    "saga_reservation_confirm",
    "saga_reservation_fail",
    "saga_retry_step",
    "sagas_expire_overdue",
    "trades_apply",
]
