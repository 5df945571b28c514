"""Every write of portfolio_svc, split by use case; balances.py is the one module that changes balances."""

from portfolios.services.balances import InsufficientFunds, UnknownAsset, assets_cache_clear, balance_credit
from portfolios.services.portfolios import portfolio_create, portfolio_create_default
from portfolios.services.prices import prices_apply_trades
from portfolios.services.reservations import (
    FailureReason,
    ReleaseFunds,
    ReserveFunds,
    reservation_release,
    reservation_reserve,
    reservations_apply,
)
from portfolios.services.settlement import (
    FillSettle,
    OrderClose,
    SettlementError,
    fill_settle,
    reservation_release_for_order,
    settlements_apply,
)

__all__ = [
    "FailureReason",
    "FillSettle",
    "InsufficientFunds",
    "OrderClose",
    "ReleaseFunds",
    "ReserveFunds",
    "SettlementError",
    "UnknownAsset",
    "assets_cache_clear",
    "balance_credit",
    "fill_settle",
    "portfolio_create",
    "portfolio_create_default",
    "prices_apply_trades",
    "reservation_release",
    "reservation_release_for_order",
    "reservation_reserve",
    "reservations_apply",
    "settlements_apply",
]
