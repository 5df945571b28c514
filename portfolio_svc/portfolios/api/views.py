"""Views of portfolio_svc's API: one APIView per operation; a user only ever sees their own portfolios."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from portfolios import selectors, services
from portfolios.api.serializers import (
    BalanceFilterSerializer,
    BalanceListItemSerializer,
    PortfolioCreateSerializer,
    PortfolioDetailSerializer,
    PortfolioSerializer,
)


class PortfolioListView(APIView):
    @extend_schema(responses=PortfolioSerializer(many=True), summary="Your portfolios with their balances")
    def get(self, request: Request) -> Response:
        portfolios = selectors.portfolio_list(user_id=request.user.id)
        return Response(PortfolioSerializer(portfolios, many=True).data)

    @extend_schema(
        request=PortfolioCreateSerializer, responses={201: PortfolioSerializer}, summary="Open another portfolio"
    )
    def post(self, request: Request) -> Response:
        payload = PortfolioCreateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        portfolio = services.portfolio_create(user_id=request.user.id, name=payload.validated_data["name"])
        portfolio = selectors.portfolio_get(user_id=request.user.id, portfolio_id=portfolio.id)
        return Response(PortfolioSerializer(portfolio).data, status=status.HTTP_201_CREATED)


class PortfolioDetailView(APIView):
    @extend_schema(responses=PortfolioDetailSerializer, summary="A portfolio, its balances and its value")
    def get(self, request: Request, portfolio_id) -> Response:
        portfolio = selectors.portfolio_get(user_id=request.user.id, portfolio_id=portfolio_id)
        portfolio.valuation = selectors.portfolio_valuation(portfolio=portfolio)
        return Response(PortfolioDetailSerializer(portfolio).data)


class BalanceListView(APIView):
    @extend_schema(
        parameters=[BalanceFilterSerializer],
        responses=BalanceListItemSerializer(many=True),
        summary="Your balances across portfolios",
    )
    def get(self, request: Request) -> Response:
        filters = BalanceFilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        balances = selectors.balance_list(
            user_id=request.user.id,
            portfolio_id=filters.validated_data.get("portfolio"),
            asset=filters.validated_data.get("asset"),
        )
        return Response(BalanceListItemSerializer(balances, many=True).data)
