"""Views of the orders API: one APIView per operation, translating HTTP to services and selectors."""

from __future__ import annotations

import json
from decimal import Decimal

from django.conf import settings
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.exceptions import ParseError
from rest_framework.pagination import CursorPagination
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from common.exceptions import parse_count
from orders import selectors
from orders.api import schemas
from orders.api.serializers import OrderPlaceSerializer, order_output, symbol_output
from orders.models import OrderStatus, Side
from orders.services import order_cancel, order_place


class DecimalJSONParser(JSONParser):
    """JSON numbers become Decimal, never float: 0.1 stays exactly 0.1."""

    def parse(self, stream, media_type=None, parser_context=None):
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            return json.loads(stream.read().decode(encoding), parse_float=Decimal)
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from None


class OrderCursorPagination(CursorPagination):
    ordering = ("-created_at", "-id")
    page_size = 50
    page_size_query_param = "limit"
    max_page_size = 500

    def get_page_size(self, request: Request) -> int:
        """A limit that is not a count from 1 to 500 is a 400 (DRF would silently use the default)."""
        raw = request.query_params.get(self.page_size_query_param)
        size = parse_count(raw, self.page_size_query_param, minimum=1, maximum=self.max_page_size)
        return self.page_size if size is None else size


class ExchangeInfoView(APIView):
    permission_classes = [AllowAny]
    authentication_classes = []

    @extend_schema(responses={200: schemas.EXCHANGE_INFO}, summary="Symbols and their filters (Binance's exchangeInfo)")
    def get(self, request: Request) -> Response:
        return Response(
            {
                "timezone": "UTC",
                "serverTime": int(timezone.now().timestamp() * 1000),
                "symbols": [symbol_output(s) for s in selectors.symbol_list()],
            }
        )


class OrderListCreateView(APIView):
    parser_classes = [DecimalJSONParser, FormParser, MultiPartParser]

    @extend_schema(
        request={"application/json": schemas.ORDER_REQUEST},
        responses={201: schemas.ORDER, 200: schemas.ORDER},
        summary="Place an order (the same client_order_id returns the existing order with 200)",
    )
    def post(self, request: Request) -> Response:
        serializer = OrderPlaceSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        order, created = order_place(user_id=request.user.id, **serializer.validated_data)
        if created:  # answered from what was just written: a new order has no fills
            return Response(order_output(order, fills=()), status=status.HTTP_201_CREATED)
        # the order placed first with this client order id, read with the fills it may have had since
        return Response(order_output(order), status=status.HTTP_200_OK)

    @extend_schema(
        parameters=[
            OpenApiParameter("symbol", str),
            OpenApiParameter("status", str, enum=OrderStatus.values),
            OpenApiParameter("side", str, enum=Side.values),
            OpenApiParameter(
                "limit", {"type": "integer", "minimum": 1, "maximum": 500}, description="page size (default 50)"
            ),
            OpenApiParameter("cursor", str),
        ],
        responses={200: schemas.ORDER_PAGE},
        summary="My orders, newest first (cursor pagination)",
    )
    def get(self, request: Request) -> Response:
        orders = selectors.order_list(user_id=request.user.id, filters=request.query_params)
        paginator = OrderCursorPagination()
        page = paginator.paginate_queryset(orders, request, view=self)
        return paginator.get_paginated_response([order_output(o) for o in page])


class OrderListCreateAliasView(OrderListCreateView):
    """/api/orders without the slash, as Binance clients call it; documented once, under /api/orders/."""

    schema = None


class OrderDetailView(APIView):
    @extend_schema(responses={200: schemas.ORDER}, summary="One of my orders", operation_id="orders_get")
    def get(self, request: Request, order_id: str) -> Response:
        return Response(order_output(selectors.order_get(order_id=order_id, user_id=request.user.id)))

    @extend_schema(responses={200: schemas.ORDER}, summary="Cancel one of my open orders", operation_id="orders_cancel")
    def delete(self, request: Request, order_id: str) -> Response:
        order = order_cancel(order_id=order_id, user_id=request.user.id)
        return Response(order_output(selectors.order_get(order_id=order.id)))
