"""Every write of portfolio_svc, split by use case; balances.py is the one module that changes balances."""

from portfolios.services.balances import InsufficientFunds, UnknownAsset, balance_credit
from portfolios.services.portfolios import portfolio_create, portfolio_create_default
from portfolios.services.prices import prices_apply_trades
from portfolios.services.reservations import (
    FailureReason,
    reservation_release,
    reservation_release_for_order,
    reservation_reserve,
)
from portfolios.services.settlement import SettlementError, fill_settle

__all__ = [
    "FailureReason",
    "InsufficientFunds",
    "SettlementError",
    "UnknownAsset",
    "balance_credit",
    "fill_settle",
    "portfolio_create",
    "portfolio_create_default",
    "prices_apply_trades",
    "reservation_release",
    "reservation_release_for_order",
    "reservation_reserve",
]
