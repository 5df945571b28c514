"""Binance's SIGNED GET /api/v3/account from portfolio_svc, which owns the balances.

The gateway has checked the request's API key and signature with user_svc (infra/nginx/binance.js) and forwards it
with an access token naming the user and the key's permissions (common.binance.SignedView). The account is the
user's default portfolio, the one orders placed without a portfolio use: each asset it holds as free (available)
and locked (reserved by open orders), as Binance prints them.
"""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from common import binance
from common.schema import BINANCE_ERROR, signed_parameters
from portfolios.models import Balance

SIGNED_PARAMETERS = signed_parameters()


def _commission(value) -> int:
    """Binance's legacy integer commission: the rate in basis points of a basis point (0.001 -> 10)."""
    return int(value * 10000)


class AccountView(binance.SignedView):
    @extend_schema(
        parameters=[
            OpenApiParameter("omitZeroBalances", OpenApiTypes.BOOL, required=False),
            *SIGNED_PARAMETERS,
        ],
        responses={
            200: inline_serializer(
                "BinanceAccount",
                {
                    "makerCommission": serializers.IntegerField(),
                    "takerCommission": serializers.IntegerField(),
                    "buyerCommission": serializers.IntegerField(),
                    "sellerCommission": serializers.IntegerField(),
                    "commissionRates": serializers.DictField(child=serializers.CharField()),
                    "canTrade": serializers.BooleanField(),
                    "canWithdraw": serializers.BooleanField(),
                    "canDeposit": serializers.BooleanField(),
                    "brokered": serializers.BooleanField(),
                    "requireSelfTradePrevention": serializers.BooleanField(),
                    "preventSor": serializers.BooleanField(),
                    "updateTime": serializers.IntegerField(),
                    "accountType": serializers.CharField(),
                    "balances": serializers.ListField(child=serializers.DictField(child=serializers.CharField())),
                    "permissions": serializers.ListField(child=serializers.CharField()),
                    "uid": serializers.IntegerField(),
                },
            ),
            400: OpenApiResponse(BINANCE_ERROR),
            401: OpenApiResponse(BINANCE_ERROR),
        },
        summary="Binance: the account's balances (free and locked) and trading permission (SIGNED)",
    )
    def get(self, request: Request) -> Response:
        params = binance.signed_params(request)
        omit = binance.parse_choice(binance.param(params, "omitZeroBalances"), "omitZeroBalances", ("true", "false"))
        claims = request.auth
        balances = list(
            Balance.objects.filter(portfolio__user_id=request.user.id, portfolio__is_default=True)
            .order_by("asset_id")
            .values_list("asset_id", "available", "locked", "updated_at")
        )
        if omit == "true":
            balances = [row for row in balances if row[1] or row[2]]
        maker, taker = settings.ORDER_MAKER_FEE_RATE, settings.ORDER_TAKER_FEE_RATE
        updated = max((row[3] for row in balances), default=None)
        return Response(
            {
                "makerCommission": _commission(maker),
                "takerCommission": _commission(taker),
                "buyerCommission": 0,
                "sellerCommission": 0,
                "commissionRates": {
                    "maker": binance.rounded8(maker),
                    "taker": binance.rounded8(taker),
                    "buyer": binance.ZERO,
                    "seller": binance.ZERO,
                },
                "canTrade": "trade" in claims.get(binance.API_KEY_PERMISSIONS_CLAIM, ()),
                "canWithdraw": False,  # paper money: it never leaves the platform
                "canDeposit": False,
                "brokered": False,
                "requireSelfTradePrevention": False,
                "preventSor": False,
                "updateTime": int(updated.timestamp() * 1000) if updated else 0,
                "accountType": "SPOT",
                "balances": [
                    {"asset": asset, "free": binance.rounded8(free), "locked": binance.rounded8(locked)}
                    for asset, free, locked, _ in balances
                ],
                "permissions": ["SPOT"],
                "uid": _uid(request.user.id),
            }
        )


def _uid(user_id) -> int:
    """Binance's integer account id: a stable number from the user's UUID (its first 52 bits: a JSON-safe integer)."""
    return user_id.int >> 76
