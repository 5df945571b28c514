"""Binance's SIGNED trading endpoints from order_svc, which owns the orders and their fills: POST, GET and DELETE
/api/v3/order, POST /api/v3/order/test, GET and DELETE /api/v3/openOrders, GET /api/v3/allOrders and myTrades.

The gateway has checked the API key, the signature, timestamp and recvWindow with user_svc and forwards the request
with an access token naming the user and the key's permissions (common.binance.SignedView: placing and cancelling
need the key's trade permission, -2015 otherwise). Orders and trades are named by Binance's integer ids (orderId:
Order.number, a trade's id: Fill.number); placement and cancels go through the platform's own services, so the
filters, the saga and the events are the ones /api/orders has.

POST /api/v3/order answers with the saga's outcome, as the exchange answers with its matching engine's: it waits,
at most ORDER_BINANCE_WAIT_S, for portfolio_svc's reply (NEW, or -2010 when the funds are short) and, for an order
that fills at once (MARKET, IOC, FOK), for its fills; woken by a PostgreSQL notification (orders.notifications).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from django.conf import settings
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.parsers import FormParser
from rest_framework.request import Request
from rest_framework.response import Response

from common import binance
from common.binance import BinanceError, SignedView, param
from common.exceptions import ApplicationError
from common.schema import BINANCE_ERROR, signed_parameters
from orders import filters, selectors
from orders.api import schemas
from orders.models import FINAL_STATUSES, Fill, Order, OrderStatus, OrderType, Side, TimeInForce
from orders.notifications import order_state_wait
from orders.selectors import OrderState
from orders.services import order_cancel, order_check, order_place, orders_cancel_open
from orders.services.placement import CLIENT_ORDER_ID_RE

ORDER_LIST_ID = -1  # no order lists (OCO, OTO) here
STP_MODE = "NONE"
RESPONSE_TYPES = ("ACK", "RESULT", "FULL")
BOOLEANS = ("true", "false")
# Binance's order types this exchange does not offer (exchangeInfo lists LIMIT and MARKET): the engine's -2010.
_UNOFFERED_TYPES = {
    "STOP_LOSS": "Stop loss orders are not supported for this symbol.",
    "STOP_LOSS_LIMIT": "Stop loss limit orders are not supported for this symbol.",
    "TAKE_PROFIT": "Take profit orders are not supported for this symbol.",
    "TAKE_PROFIT_LIMIT": "Take profit limit orders are not supported for this symbol.",
    "LIMIT_MAKER": "Unsupported order combination",
}
CANCEL_RESTRICTIONS = {
    "ONLY_NEW": (OrderStatus.NEW,),
    "ONLY_PARTIALLY_FILLED": (OrderStatus.PARTIALLY_FILLED,),
}
# portfolio_svc's refusals (balance.reservation_failed's reason) that mean the account lacks the funds.
_SHORT_OF_FUNDS = frozenset({"insufficient_funds", "unknown_portfolio", "unknown_asset"})
INSUFFICIENT_BALANCE = "Account has insufficient balance for requested action."
LIMIT_MAX = 1000
DAY_MS = 24 * 3600 * 1000
_MS_MAX = 253402300799999  # 9999-12-31T23:59:59.999Z, the last instant Python's datetime holds

NEW_ORDER_REJECTED = -2010
CANCEL_REJECTED = -2011
NO_SUCH_ORDER = -2013
TIF_NOT_REQUIRED = -1114
INVALID_TIF = -1115
INVALID_ORDER_TYPE = -1116
INVALID_SIDE = -1117
PARAM_NOT_REQUIRED = -1106
INVALID_CANCEL_RESTRICTIONS = -1145


def _unknown_order() -> BinanceError:
    return BinanceError(CANCEL_REJECTED, "Unknown order sent.")


# --- answers ----------------------------------------------------------------------------------------------------


def _ms(value: datetime | None) -> int:
    return int(value.timestamp() * 1000) if value is not None else -1


def _amount(value: Decimal | None) -> str:
    return binance.ZERO if value is None else binance.binance_decimal(value)


def _ack(order: Order) -> dict[str, Any]:
    return {
        "symbol": order.symbol_id,
        "orderId": order.number,
        "orderListId": ORDER_LIST_ID,
        "clientOrderId": order.client_order_id,
        "transactTime": _ms(order.created_at),
    }


def _figures(order: Order) -> dict[str, Any]:
    return {
        "price": _amount(order.price),
        "origQty": _amount(order.quantity),  # a MARKET BUY by quote amount: 0 until its fill says what it bought
        "executedQty": _amount(order.executed_qty),
        "origQuoteOrderQty": _amount(order.quote_order_qty),
        "cummulativeQuoteQty": _amount(order.cumulative_quote_qty),  # sic: Binance's spelling
        "status": order.status,
        "timeInForce": order.time_in_force or TimeInForce.GTC,  # as Binance reports a MARKET order's
        "type": order.type,
        "side": order.side,
    }


def order_result(order: Order) -> dict[str, Any]:
    """POST /api/v3/order's RESULT answer."""
    return {
        **_ack(order),
        **_figures(order),
        "workingTime": _ms(order.accepted_at),
        "selfTradePreventionMode": STP_MODE,
    }


def order_full(order: Order, fills: list[Fill]) -> dict[str, Any]:
    """POST /api/v3/order's FULL answer: RESULT and the order's fills."""
    return {
        **order_result(order),
        "fills": [
            {
                "price": _amount(f.price),
                "qty": _amount(f.qty),
                "commission": _amount(f.fee),
                "commissionAsset": f.fee_asset,
                "tradeId": f.number,
            }
            for f in fills
        ],
    }


def order_v3(order: Order) -> dict[str, Any]:
    """Binance's order object (GET /api/v3/order, openOrders, allOrders)."""
    figures = _figures(order)
    return {
        "symbol": order.symbol_id,
        "orderId": order.number,
        "orderListId": ORDER_LIST_ID,
        "clientOrderId": order.client_order_id,
        "price": figures["price"],
        "origQty": figures["origQty"],
        "executedQty": figures["executedQty"],
        "cummulativeQuoteQty": figures["cummulativeQuoteQty"],
        "status": order.status,
        "timeInForce": figures["timeInForce"],
        "type": order.type,
        "side": order.side,
        "stopPrice": binance.ZERO,
        "icebergQty": binance.ZERO,
        "time": _ms(order.created_at),
        "updateTime": _ms(order.updated_at),
        "isWorking": order.accepted_at is not None,
        "workingTime": _ms(order.accepted_at),
        "origQuoteOrderQty": figures["origQuoteOrderQty"],
        "selfTradePreventionMode": STP_MODE,
    }


def order_canceled(order: Order, *, cancel_id: str | None = None) -> dict[str, Any]:
    """Binance's answer to a cancel: the order as the cancel left it, under the cancel's own client id."""
    return {
        "symbol": order.symbol_id,
        "origClientOrderId": order.client_order_id,
        "orderId": order.number,
        "orderListId": ORDER_LIST_ID,
        "clientOrderId": cancel_id or uuid.uuid4().hex[:22],
        "transactTime": _ms(order.updated_at),
        **_figures(order),
        "selfTradePreventionMode": STP_MODE,
    }


def trade_v3(fill: Fill) -> dict[str, Any]:
    """One of the account's trades, as GET /api/v3/myTrades lists it."""
    order = fill.order
    return {
        "symbol": order.symbol_id,
        "id": fill.number,
        "orderId": order.number,
        "orderListId": ORDER_LIST_ID,
        "price": _amount(fill.price),
        "qty": _amount(fill.qty),
        "quoteQty": _amount(fill.quote_qty),
        "commission": _amount(fill.fee),
        "commissionAsset": fill.fee_asset,
        "time": _ms(fill.executed_at),
        "isBuyer": order.side == Side.BUY,
        "isMaker": fill.is_maker,
        "isBestMatch": True,
    }


# --- parameters -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NewOrder:
    symbol: str
    side: str
    type_: str
    time_in_force: str | None
    quantity: Decimal | None
    price: Decimal | None
    quote_order_qty: Decimal | None
    client_order_id: str | None
    response_type: str


def _required(params: dict[str, str], name: str) -> str:
    value = param(params, name)
    if value is None:
        raise binance.missing(name)
    return value


def _new_order(params: dict[str, str]) -> NewOrder:
    """POST /api/v3/order's (and order/test's) parameters, refused with the exchange's codes."""
    symbol = binance.parse_symbol(param(params, "symbol"))
    side = _required(params, "side")
    if side not in Side.values:
        raise BinanceError(INVALID_SIDE, "Invalid side.")
    type_ = _required(params, "type")
    if type_ in _UNOFFERED_TYPES:
        raise BinanceError(NEW_ORDER_REJECTED, _UNOFFERED_TYPES[type_])
    if type_ not in OrderType.values:
        raise BinanceError(INVALID_ORDER_TYPE, "Invalid orderType.")
    time_in_force = param(params, "timeInForce")
    if time_in_force is not None and time_in_force not in TimeInForce.values:
        raise BinanceError(INVALID_TIF, "Invalid timeInForce.")
    if time_in_force is not None and type_ == OrderType.MARKET:
        raise BinanceError(TIF_NOT_REQUIRED, "TimeInForce parameter sent when not required.")
    for name in ("stopPrice", "trailingDelta"):
        if param(params, name) is not None:
            raise BinanceError(PARAM_NOT_REQUIRED, f"Parameter '{name}' sent when not required.")
    if param(params, "icebergQty") is not None:
        raise BinanceError(NEW_ORDER_REJECTED, "Iceberg orders are not supported for this symbol.")
    binance.parse_choice(param(params, "selfTradePreventionMode"), "selfTradePreventionMode", (STP_MODE,))
    response_type = binance.parse_choice(param(params, "newOrderRespType"), "newOrderRespType", RESPONSE_TYPES)
    client_order_id = param(params, "newClientOrderId")
    if client_order_id is not None and not CLIENT_ORDER_ID_RE.fullmatch(client_order_id):
        raise BinanceError(
            binance.ILLEGAL_CHARS,
            "Illegal characters found in parameter 'newClientOrderId'; legal range is '^[a-zA-Z0-9-_]{1,36}$'.",
        )
    pair = selectors.symbol_get(symbol=symbol)
    if pair is None:
        raise binance.invalid_symbol()
    if not pair.is_trading:
        raise BinanceError(NEW_ORDER_REJECTED, "Market is closed.")
    return NewOrder(
        symbol=symbol,
        side=side,
        type_=type_,
        time_in_force=time_in_force,
        quantity=filters.parse_decimal("quantity", param(params, "quantity")),
        price=filters.parse_decimal("price", param(params, "price")),
        quote_order_qty=filters.parse_decimal("quoteOrderQty", param(params, "quoteOrderQty")),
        client_order_id=client_order_id,
        response_type=response_type or "FULL",  # Binance's default for LIMIT and MARKET
    )


def _known_symbol(params: dict[str, str], *, required: bool = True) -> str | None:
    raw = param(params, "symbol")
    if raw is None and not required:
        return None
    symbol = binance.parse_symbol(raw)
    if selectors.symbol_get(symbol=symbol) is None:
        raise binance.invalid_symbol()
    return symbol


def _order_ids(params: dict[str, str]) -> tuple[int | None, str | None]:
    """orderId and/or origClientOrderId: one at least (both: the order must have both)."""
    number = binance.parse_int(param(params, "orderId"), "orderId")
    client_order_id = param(params, "origClientOrderId")
    if number is None and client_order_id is None:
        raise BinanceError(
            binance.MANDATORY_PARAM_EMPTY_OR_MALFORMED,
            "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!",
        )
    return number, client_order_id


def _limit(params: dict[str, str]) -> int:
    return binance.parse_int(param(params, "limit"), "limit", minimum=1, maximum=LIMIT_MAX) or 500


def _time_window(params: dict[str, str]) -> tuple[datetime | None, datetime | None]:
    """startTime and endTime (ms), at most 24 hours apart, as the exchange allows for allOrders and myTrades."""
    start, end = binance.parse_time_range(params)
    if start is not None and end is not None and end - start > DAY_MS:
        raise BinanceError(binance.MORE_THAN_XX_HOURS, "More than 24 hours between startTime and endTime.")
    return _moment(start), _moment(end)


def _moment(ms: int | None) -> datetime | None:
    return None if ms is None else datetime.fromtimestamp(min(ms, _MS_MAX) / 1000, tz=UTC)


# --- the outcome of a placement ---------------------------------------------------------------------------------


def _settled(new: NewOrder) -> Callable[[str], bool]:
    """When the answer is known: the saga's reply, and for an order that fills at once (or expires) its end."""
    immediate = new.type_ == OrderType.MARKET or new.time_in_force in (TimeInForce.IOC, TimeInForce.FOK)
    if immediate and new.response_type != "ACK":
        return lambda status: status in FINAL_STATUSES
    return lambda status: status != OrderStatus.PENDING_NEW


def _rejected(reason: str) -> BinanceError:
    if reason in _SHORT_OF_FUNDS:
        return BinanceError(NEW_ORDER_REJECTED, INSUFFICIENT_BALANCE)
    return BinanceError(NEW_ORDER_REJECTED, f"Order was rejected: {reason or 'no reason given'}.")


def _placed(order: Order, state: OrderState | None, response_type: str) -> dict[str, Any]:
    status = state.status if state is not None else OrderStatus.PENDING_NEW
    if status == OrderStatus.REJECTED:
        raise _rejected(state.reason)
    if status == OrderStatus.PENDING_NEW:
        # The saga is still running: what is known. A client reads the order later (GET /api/v3/order).
        return _ack(order) if response_type == "ACK" else {**_ack(order), "status": status}
    if response_type == "ACK":
        return _ack(order)
    if status == OrderStatus.NEW:
        # Accepted and nothing filled yet: the order as written, with what the notification said; no read.
        order.status = status
        order.accepted_at = order.updated_at = datetime.fromtimestamp(state.updated_at_ms / 1000, tz=UTC)
        return order_result(order) if response_type == "RESULT" else order_full(order, [])
    filled = selectors.order_get(order_id=order.id)  # filled, expired or cancelled: its fills and figures
    return order_result(filled) if response_type == "RESULT" else order_full(filled, list(filled.fills.all()))


# --- views ------------------------------------------------------------------------------------------------------


def _p(name: str, schema: Any, description: str = "", *, required: bool = False) -> OpenApiParameter:
    return OpenApiParameter(name, schema, required=required, description=description)


_SYMBOL = _p("symbol", {"type": "string", "pattern": binance.SYMBOL_PATTERN}, required=True)
_LONG = {"type": "integer", "minimum": 0, "maximum": binance.LONG_MAX}
_DECIMAL = {"type": "string", "pattern": filters.DECIMAL_PATTERN}
_CLIENT_ID = {"type": "string", "pattern": r"^[a-zA-Z0-9_-]{1,36}$"}
SIGNED_PARAMETERS = signed_parameters()
_ORDER_PARAMETERS = [
    _SYMBOL,
    _p("side", {"type": "string", "enum": Side.values}, required=True),
    _p("type", {"type": "string", "enum": OrderType.values}, "LIMIT or MARKET (the others: -2010)", required=True),
    _p("timeInForce", {"type": "string", "enum": TimeInForce.values}, "LIMIT only (required there)"),
    _p("quantity", _DECIMAL, "base quantity: LIMIT, and MARKET unless quoteOrderQty"),
    _p("quoteOrderQty", _DECIMAL, "MARKET BUY: the quote amount to spend"),
    _p("price", _DECIMAL, "LIMIT only"),
    _p("newClientOrderId", _CLIENT_ID, "unique per account: a second order with it is -2010 Duplicate order sent."),
    _p("newOrderRespType", {"type": "string", "enum": list(RESPONSE_TYPES)}, "default FULL"),
    _p("selfTradePreventionMode", {"type": "string", "enum": [STP_MODE]}),
    *SIGNED_PARAMETERS,
]
_ORDER_ID_PARAMETERS = [
    _SYMBOL,
    _p("orderId", _LONG, "one of orderId and origClientOrderId is required"),
    _p("origClientOrderId", {"type": "string", "maxLength": 64}),
]
_REFUSED = OpenApiResponse(BINANCE_ERROR, description="Binance's refusal (the body's code says why)")
_KEY_REFUSED = OpenApiResponse(
    BINANCE_ERROR,
    description="no API key token (-2014: the request did not come through the gateway's key check), or one the "
    "endpoint does not accept (-2015: expired, forged, or a read-only key on a TRADE endpoint)",
)
_FORM = "Parameters in the query string or form-encoded in the body (Binance takes either; each name once, -1101)."


def _answers(ok: Any) -> dict[int, Any]:
    return {200: ok, 400: _REFUSED, 401: _KEY_REFUSED}


class _SignedV3View(SignedView):
    parser_classes = [FormParser]  # Binance's bodies are application/x-www-form-urlencoded


class OrderView(_SignedV3View):
    trade_methods = frozenset({"POST", "DELETE"})

    @extend_schema(
        summary="Binance: place an order (TRADE), answered with the saga's outcome",
        description="Waits at most ORDER_BINANCE_WAIT_S (2 s) for portfolio_svc's reply: NEW, or -2010 `Account has "
        "insufficient balance for requested action.`; an order that fills at once (MARKET, IOC, FOK) also for its "
        "fills. Still PENDING_NEW at the bound: the ACK fields and the status. " + _FORM,
        parameters=_ORDER_PARAMETERS,
        request=None,
        responses=_answers(schemas.V3_NEW_ORDER),
        operation_id="v3_order_new",
    )
    def post(self, request: Request) -> Response:
        new = _new_order(binance.signed_params(request))
        order, created = order_place(
            user_id=request.user.id,
            symbol=new.symbol,
            side=new.side,
            type_=new.type_,
            quantity=new.quantity,
            price=new.price,
            time_in_force=new.time_in_force,
            quote_order_qty=new.quote_order_qty,
            client_order_id=new.client_order_id,
        )
        if not created:
            raise BinanceError(NEW_ORDER_REJECTED, "Duplicate order sent.")
        state = order_state_wait(order_id=order.id, settled=_settled(new), timeout_s=settings.ORDER_BINANCE_WAIT_S)
        return Response(_placed(order, state, new.response_type))

    @extend_schema(
        summary="Binance: one of my orders (USER_DATA)",
        description="By orderId or origClientOrderId; both: the order must have both. Unknown: -2013.",
        parameters=[*_ORDER_ID_PARAMETERS, *SIGNED_PARAMETERS],
        responses=_answers(schemas.V3_ORDER),
        operation_id="v3_order_get",
    )
    def get(self, request: Request) -> Response:
        params = binance.signed_params(request)
        symbol = _known_symbol(params)
        number, client_order_id = _order_ids(params)
        order = selectors.order_find(
            user_id=request.user.id, symbol=symbol, number=number, client_order_id=client_order_id
        )
        if order is None:
            raise BinanceError(NO_SUCH_ORDER, "Order does not exist.")
        return Response(order_v3(order))

    @extend_schema(
        summary="Binance: cancel one of my open orders (TRADE)",
        description="By orderId or origClientOrderId (both: the order must have both). An unknown order, or one "
        "that is not open any more: -2011 `Unknown order sent.` " + _FORM,
        parameters=[
            *_ORDER_ID_PARAMETERS,
            _p("newClientOrderId", _CLIENT_ID, "this cancel's id, echoed as clientOrderId"),
            _p("cancelRestrictions", {"type": "string", "enum": list(CANCEL_RESTRICTIONS)}),
            *SIGNED_PARAMETERS,
        ],
        request=None,
        responses=_answers(schemas.V3_CANCELED),
        operation_id="v3_order_cancel",
    )
    def delete(self, request: Request) -> Response:
        params = binance.signed_params(request)
        symbol = _known_symbol(params)
        number, client_order_id = _order_ids(params)
        cancel_id = param(params, "newClientOrderId")
        if cancel_id is not None and not CLIENT_ORDER_ID_RE.fullmatch(cancel_id):
            raise BinanceError(
                binance.ILLEGAL_CHARS,
                "Illegal characters found in parameter 'newClientOrderId'; legal range is '^[a-zA-Z0-9-_]{1,36}$'.",
            )
        restriction = param(params, "cancelRestrictions")
        if restriction is not None and restriction not in CANCEL_RESTRICTIONS:
            raise BinanceError(INVALID_CANCEL_RESTRICTIONS, "Invalid cancelRestrictions")
        order = selectors.order_find(
            user_id=request.user.id, symbol=symbol, number=number, client_order_id=client_order_id
        )
        if order is None:
            raise _unknown_order()
        try:
            canceled = order_cancel(
                order_id=order.id,
                user_id=request.user.id,
                only_statuses=CANCEL_RESTRICTIONS.get(restriction) if restriction else None,
            )
        except filters.CancelRestricted as exc:
            raise BinanceError(CANCEL_REJECTED, exc.message) from None
        except filters.OrderNotFound:
            raise _unknown_order() from None
        except ApplicationError as exc:
            if exc.code != filters.CANCEL_REJECTED:
                raise
            raise _unknown_order() from None  # done already (filled, cancelled, expired): as the exchange says
        return Response(order_canceled(canceled, cancel_id=cancel_id))


class TestOrderView(_SignedV3View):
    trade_methods = frozenset({"POST"})

    @extend_schema(
        summary="Binance: check an order without placing it (TRADE)",
        description="The same parameters and checks as POST /api/v3/order (the symbol, the type's parameters, the "
        "filters); nothing is placed and nothing reserved, so funds are not checked. " + _FORM,
        parameters=[
            *_ORDER_PARAMETERS,
            _p("computeCommissionRates", {"type": "string", "enum": ["true", "false"]}, "answer the rates too"),
        ],
        request=None,
        responses=_answers(schemas.V3_TEST_ORDER),
        operation_id="v3_order_test",
    )
    def post(self, request: Request) -> Response:
        params = binance.signed_params(request)
        new = _new_order(params)
        rates = binance.parse_choice(param(params, "computeCommissionRates"), "computeCommissionRates", BOOLEANS)
        order_check(
            symbol=new.symbol,
            side=new.side,
            type_=new.type_,
            quantity=new.quantity,
            price=new.price,
            time_in_force=new.time_in_force,
            quote_order_qty=new.quote_order_qty,
        )
        if rates != "true":
            return Response({})
        maker, taker = binance.rounded8(settings.ORDER_MAKER_FEE_RATE), binance.rounded8(settings.ORDER_TAKER_FEE_RATE)
        return Response(
            {
                "standardCommissionForOrder": {"maker": maker, "taker": taker},
                "taxCommissionForOrder": {"maker": binance.ZERO, "taker": binance.ZERO},
                "discount": {
                    "enabledForAccount": False,
                    "enabledForSymbol": False,
                    "discountAsset": "BNB",
                    "discount": binance.ZERO,
                },
            }
        )


class OpenOrdersView(_SignedV3View):
    trade_methods = frozenset({"DELETE"})

    @extend_schema(
        summary="Binance: my open orders (USER_DATA)",
        description="Accepted and not done (NEW, PARTIALLY_FILLED), and those still waiting for their funds "
        "(PENDING_NEW); of one symbol, or of every symbol without `symbol`. Oldest first.",
        parameters=[_p("symbol", {"type": "string", "pattern": binance.SYMBOL_PATTERN}), *SIGNED_PARAMETERS],
        responses=_answers(schemas.V3_ORDERS),
        operation_id="v3_open_orders",
    )
    def get(self, request: Request) -> Response:
        symbol = _known_symbol(binance.signed_params(request), required=False)
        return Response([order_v3(o) for o in selectors.orders_open_list(user_id=request.user.id, symbol=symbol)])

    @extend_schema(
        summary="Binance: cancel all my open orders on a symbol (TRADE)",
        description="In one transaction. None open: -2011 `Unknown order sent.` " + _FORM,
        parameters=[_SYMBOL, *SIGNED_PARAMETERS],
        request=None,
        responses=_answers(schemas.V3_CANCELED_LIST),
        operation_id="v3_open_orders_cancel",
    )
    def delete(self, request: Request) -> Response:
        symbol = _known_symbol(binance.signed_params(request))
        canceled = orders_cancel_open(user_id=request.user.id, symbol=symbol)
        if not canceled:
            raise _unknown_order()
        return Response([order_canceled(o) for o in canceled])


class AllOrdersView(_SignedV3View):
    @extend_schema(
        summary="Binance: my orders of a symbol, open or done (USER_DATA)",
        description="From orderId (that one included) or from startTime onwards, oldest first; otherwise the "
        "newest `limit`. startTime and endTime at most 24 hours apart (-1127).",
        parameters=[
            _SYMBOL,
            _p("orderId", _LONG, "from this orderId on"),
            _p("startTime", _LONG, "ms"),
            _p("endTime", _LONG, "ms"),
            _p("limit", {"type": "integer", "minimum": 1, "maximum": LIMIT_MAX}, "default 500"),
            *SIGNED_PARAMETERS,
        ],
        responses=_answers(schemas.V3_ORDERS),
        operation_id="v3_all_orders",
    )
    def get(self, request: Request) -> Response:
        params = binance.signed_params(request)
        symbol = _known_symbol(params)
        number = binance.parse_int(param(params, "orderId"), "orderId")
        start, end = _time_window(params)
        orders = selectors.orders_history_list(
            user_id=request.user.id, symbol=symbol, from_number=number, start=start, end=end, limit=_limit(params)
        )
        return Response([order_v3(o) for o in orders])


class MyTradesView(_SignedV3View):
    @extend_schema(
        summary="Binance: my trades on a symbol (USER_DATA)",
        description="One per fill. From fromId (that one included) or from startTime onwards, oldest first; "
        "otherwise the newest `limit`. orderId narrows to one order and combines only with fromId; fromId takes no "
        "startTime or endTime (-1128); those at most 24 hours apart (-1127).",
        parameters=[
            _SYMBOL,
            _p("orderId", _LONG, "only this order's trades"),
            _p("startTime", _LONG, "ms"),
            _p("endTime", _LONG, "ms"),
            _p("fromId", _LONG, "from this trade id on"),
            _p("limit", {"type": "integer", "minimum": 1, "maximum": LIMIT_MAX}, "default 500"),
            *SIGNED_PARAMETERS,
        ],
        responses=_answers(schemas.V3_TRADES),
        operation_id="v3_my_trades",
    )
    def get(self, request: Request) -> Response:
        params = binance.signed_params(request)
        symbol = _known_symbol(params)
        number = binance.parse_int(param(params, "orderId"), "orderId")
        from_id = binance.parse_int(param(params, "fromId"), "fromId")
        start, end = _time_window(params)
        timed = start is not None or end is not None
        if timed and (from_id is not None or number is not None):
            raise BinanceError(binance.OPTIONAL_PARAMS_BAD_COMBO, "Combination of optional parameters invalid.")
        fills = selectors.fills_list(
            user_id=request.user.id,
            symbol=symbol,
            order_number=number,
            from_number=from_id,
            start=start,
            end=end,
            limit=_limit(params),
        )
        return Response([trade_v3(f) for f in fills])
