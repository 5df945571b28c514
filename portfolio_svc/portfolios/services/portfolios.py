"""Portfolios: creating them, and the default one every registered user gets with its starting paper funds."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import IntegrityError, transaction

from common.exceptions import Conflict
from common.outbox.services import publish
from common.topics import Topic
from portfolios.models import Portfolio
from portfolios.services.balances import balance_credit

DEFAULT_NAME = "Default"
STARTING_FUNDS_REASON = "starting_funds"


def portfolio_create(*, user_id: uuid.UUID, name: str, is_default: bool = False) -> Portfolio:
    """A new, empty portfolio; publishes portfolio.created. Raises Conflict when the user has that name already."""
    try:
        with transaction.atomic():
            portfolio = Portfolio.objects.create(user_id=user_id, name=name, is_default=is_default)
            publish(
                Topic.PORTFOLIO_EVENTS,
                "portfolio.created",
                str(portfolio.id),
                {
                    "portfolio_id": str(portfolio.id),
                    "user_id": str(user_id),
                    "name": portfolio.name,
                    "is_default": portfolio.is_default,
                },
            )
    except IntegrityError:
        # The database decides (unique name per user, one default per user): no check-then-act.
        raise Conflict(
            "this user already has a portfolio with that name" if not is_default else "this user has a default",
            code="portfolio_exists",
        ) from None
    return portfolio


def portfolio_create_default(*, user_id: uuid.UUID) -> tuple[Portfolio, bool]:
    """The user's default portfolio with the starting paper funds; returns (portfolio, created).

    A second call (a redelivered or repeated user.registered) finds the existing one and changes nothing.
    """
    with transaction.atomic():
        existing = Portfolio.objects.filter(user_id=user_id, is_default=True).first()
        if existing is not None:
            return existing, False
        # A concurrent creator makes this raise Conflict; the consumer retries and finds its portfolio above.
        portfolio = portfolio_create(user_id=user_id, name=DEFAULT_NAME, is_default=True)
        if settings.PORTFOLIO_STARTING_FUNDS > 0:
            balance_credit(
                portfolio_id=portfolio.id,
                asset=settings.PORTFOLIO_STARTING_ASSET,
                amount=settings.PORTFOLIO_STARTING_FUNDS,
                reason=STARTING_FUNDS_REASON,
            )
    return portfolio, True
