"""Binance's USER_STREAM endpoints: POST, PUT and DELETE /api/v3/userDataStream make, keep alive and close the
listenKey a client then connects to the streams server with (/ws/<listenKey>).

API-key-only on the exchange: the gateway checks X-MBX-APIKEY with user_svc and forwards the request with an access
token naming the key's user (common.binance.SignedView; any live key may, as on the exchange).
"""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.parsers import FormParser
from rest_framework.request import Request
from rest_framework.response import Response

from common.binance import SignedView, missing, signed_params
from common.schema import BINANCE_ERROR
from streams import listen_keys

_LISTEN_KEY = OpenApiParameter(
    "listenKey", OpenApiTypes.STR, OpenApiParameter.QUERY, required=True, description="The key POST answered"
)
_CREATED = {
    "type": "object",
    "properties": {"listenKey": {"type": "string", "pattern": "^[A-Za-z0-9]{64}$"}},
    "required": ["listenKey"],
}
_EMPTY = {"type": "object", "additionalProperties": False}
_REFUSED = OpenApiResponse(BINANCE_ERROR, description="-1125 This listenKey does not exist; -1102 none sent")
_KEY_REFUSED = OpenApiResponse(BINANCE_ERROR, description="-2014 / -2015: the API key was not accepted")


def _listen_key(request: Request) -> str:
    key = signed_params(request).get("listenKey")
    if key is None:
        raise missing("listenKey")
    return key


class UserDataStreamView(SignedView):
    parser_classes = [FormParser]  # Binance's bodies are application/x-www-form-urlencoded

    @extend_schema(
        summary="Binance: start a user data stream (USER_STREAM)",
        description="Answers the account's live listenKey with 60 more minutes, or a new one. Connect to "
        "/ws/<listenKey> (or /stream?streams=<listenKey>) on the streams server.",
        request=None,
        responses={200: _CREATED, 401: _KEY_REFUSED},
        operation_id="v3_user_data_stream_create",
    )
    def post(self, request: Request) -> Response:
        return Response({"listenKey": listen_keys.listen_key_create(user_id=str(request.user.id))})

    @extend_schema(
        summary="Binance: keep a user data stream alive (USER_STREAM)",
        description="60 more minutes for the listenKey (Binance recommends a keepalive every 30 minutes).",
        parameters=[_LISTEN_KEY],
        request=None,
        responses={200: _EMPTY, 400: _REFUSED, 401: _KEY_REFUSED},
        operation_id="v3_user_data_stream_keepalive",
    )
    def put(self, request: Request) -> Response:
        listen_keys.listen_key_keepalive(user_id=str(request.user.id), listen_key=_listen_key(request))
        return Response({})

    @extend_schema(
        summary="Binance: close a user data stream (USER_STREAM)",
        description="The listenKey stops existing; its connections get listenKeyExpired and are closed.",
        parameters=[_LISTEN_KEY],
        request=None,
        responses={200: _EMPTY, 400: _REFUSED, 401: _KEY_REFUSED},
        operation_id="v3_user_data_stream_close",
    )
    def delete(self, request: Request) -> Response:
        listen_keys.listen_key_close(user_id=str(request.user.id), listen_key=_listen_key(request))
        return Response({})
