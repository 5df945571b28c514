"""user_svc's API: one view per operation; each validates its input, calls one service and shapes the answer."""

from __future__ import annotations

import uuid
from dataclasses import asdict
from typing import Any

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.generics import GenericAPIView
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from common import binance
from common.binance import BinanceError, BinanceView
from users import keys, selectors, services
from users.api import serializers as s
from users.throttling import PasswordThrottled
from users.tokens import TokenPair, api_key_access_token

REGISTER_ACCEPTED = (
    "Registration received. A mail is on its way to this address: follow it to confirm the address "
    "(if the address already has an account, the mail says so instead)."
)

# What a password check answers while it must wait (users.throttling), documented on every operation that checks one.
THROTTLED = {
    429: OpenApiResponse(
        s.ThrottledSerializer, description="Too many wrong passwords: wait Retry-After seconds (details name the limit)"
    )
}
RETRY_AFTER = OpenApiParameter(
    "Retry-After",
    OpenApiTypes.INT,
    OpenApiParameter.HEADER,
    response=[429],
    required=True,
    description="Seconds before the next attempt can be admitted",
)


def request_id(request: Request) -> str:
    return getattr(request, "request_id", "")


def client_ip(request: Request) -> str:
    """The caller's address: REMOTE_ADDR, or the entry the trusted proxies (the gateway) put in X-Forwarded-For.

    Only as many X-Forwarded-For entries as there are trusted proxies are believed, so a client cannot
    pick its own address to escape the per-address throttle.
    """
    proxies = settings.LOGIN_THROTTLE_TRUSTED_PROXIES
    forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
    if proxies and forwarded:
        return forwarded[-min(proxies, len(forwarded))]
    return request.META.get("REMOTE_ADDR", "")


def token_body(pair: TokenPair) -> dict[str, Any]:
    return {**asdict(pair), "token_type": "Bearer"}


class ThrottledAnswersMixin:
    """A view that checks a password: its 429 says in Retry-After when to try again (RFC 9110)."""

    def handle_exception(self, exc: Exception) -> Response:
        response = super().handle_exception(exc)  # type: ignore[misc]
        if isinstance(exc, PasswordThrottled):
            response["Retry-After"] = str(exc.retry_after)
        return response


class AnonymousView(GenericAPIView):
    """An auth endpoint: open to anyone, and a stale Authorization header is ignored rather than refused."""

    permission_classes = [AllowAny]
    authentication_classes = []

    def valid_data(self, request: Request) -> dict[str, Any]:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data


class RegisterView(AnonymousView):
    serializer_class = s.RegisterSerializer

    @extend_schema(
        responses={202: s.RegisterAcceptedSerializer},
        summary="Ask for an account; the address is confirmed by mail",
        description=(
            "Answers 202 with the same body whether or not the address already has an account, so the answer tells "
            "nobody which addresses are registered. A free address gets its account and a mail with a confirmation "
            "token (see confirm-email); a taken one gets a mail telling its owner that someone tried. The account "
            "can log in at once: confirmation is not required to log in. 400 only for invalid input (a malformed "
            "address, a weak password), which never depends on the accounts there are."
        ),
    )
    def post(self, request: Request) -> Response:
        services.user_register(**self.valid_data(request), request_id=request_id(request))
        return Response({"message": REGISTER_ACCEPTED}, status=status.HTTP_202_ACCEPTED)


class ConfirmEmailView(AnonymousView):
    serializer_class = s.EmailConfirmSerializer

    @extend_schema(
        responses={200: s.EmailConfirmedSerializer},
        summary="Confirm an account's address with the token mailed to it",
        description=(
            "Confirming twice answers the same. 400 confirmation_invalid for a forged token or one for an address the "
            "account no longer has, confirmation_expired for an old one."
        ),
    )
    def post(self, request: Request) -> Response:
        user = services.user_confirm_email(**self.valid_data(request), request_id=request_id(request))
        return Response(s.EmailConfirmedSerializer(user).data)


class LoginView(ThrottledAnswersMixin, AnonymousView):
    serializer_class = s.LoginSerializer

    @extend_schema(
        responses={200: s.LoginResponseSerializer, **THROTTLED},
        parameters=[RETRY_AFTER],
        summary="Exchange email and password for tokens (a new session)",
        description=(
            "401 invalid_credentials for any wrong email or password. Failures are throttled per client address, per "
            "account from one address (429 for that pair only) and per account everywhere (slowed, never locked: "
            "the owner from another address still logs in)."
        ),
    )
    def post(self, request: Request) -> Response:
        user, pair = services.user_login(
            **self.valid_data(request), ip=client_ip(request), request_id=request_id(request)
        )
        return Response({**token_body(pair), "user": s.UserSerializer(user).data})


class RefreshView(AnonymousView):
    serializer_class = s.RefreshSerializer

    @extend_schema(
        responses={200: s.TokenPairSerializer},
        summary="Trade a refresh token for the next pair of its session",
        description=(
            "Each refresh token is good once. 401 token_reused when a used one comes back: the whole session (every "
            "refresh token descended from its login) is ended, for whoever holds a copy. 401 token_revoked for a "
            "token of an ended session, token_expired and token_invalid otherwise."
        ),
    )
    def post(self, request: Request) -> Response:
        pair = services.token_refresh(**self.valid_data(request), request_id=request_id(request))
        return Response(token_body(pair))


class LogoutView(AnonymousView):
    serializer_class = s.RefreshSerializer

    @extend_schema(responses={204: None}, summary="Log out: end the session of a refresh token")
    def post(self, request: Request) -> Response:
        services.token_revoke(**self.valid_data(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


class MeView(ThrottledAnswersMixin, GenericAPIView):
    serializer_class = s.UserUpdateSerializer

    @extend_schema(responses={200: s.UserSerializer}, summary="The caller's account")
    def get(self, request: Request) -> Response:
        return Response(s.UserSerializer(selectors.user_get_active(user_id=request.user.id)).data)

    @extend_schema(
        responses={200: s.UserSerializer, **THROTTLED},
        parameters=[RETRY_AFTER],
        summary="Change the caller's profile",
        description=(
            "A new email needs current_password (400 on current_password when it is missing or wrong; wrong ones are "
            "throttled like logins). The new address is unconfirmed until its owner follows the mail sent to it."
        ),
    )
    def patch(self, request: Request) -> Response:
        me = selectors.user_get_active(user_id=request.user.id)
        serializer = self.get_serializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        user = services.user_update(
            user_id=me.id, actor=me, ip=client_ip(request), request_id=request_id(request), **serializer.validated_data
        )
        return Response(s.UserSerializer(user).data)


class PasswordChangeView(ThrottledAnswersMixin, GenericAPIView):
    serializer_class = s.PasswordChangeSerializer

    @extend_schema(
        responses={200: s.TokenPairSerializer, **THROTTLED},
        parameters=[RETRY_AFTER],
        summary="Change the caller's password; every other session is logged out",
        description="Wrong current passwords count against the same limits as failed logins (429 past them).",
    )
    def post(self, request: Request) -> Response:
        me = selectors.user_get_active(user_id=request.user.id)
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        pair = services.user_change_password(
            user_id=me.id, ip=client_ip(request), request_id=request_id(request), **serializer.validated_data
        )
        return Response(token_body(pair))


class JwksView(APIView):
    """The public key that verifies every token user_svc signs (RFC 7517), keyed by its thumbprint."""

    permission_classes = [AllowAny]
    authentication_classes = []

    @extend_schema(responses=OpenApiTypes.OBJECT, summary="JSON Web Key Set")
    def get(self, request: Request) -> Response:
        response = Response(keys.jwks())
        response["Cache-Control"] = "public, max-age=300"
        return response


class ApiKeysView(GenericAPIView):
    serializer_class = s.ApiKeyCreateSerializer

    @extend_schema(
        responses={200: s.ApiKeySerializer(many=True)},
        summary="The caller's API keys (never their secrets)",
    )
    def get(self, request: Request) -> Response:
        me = selectors.user_get_active(user_id=request.user.id)
        return Response(s.ApiKeySerializer(selectors.api_key_list(user_id=me.id), many=True).data)

    @extend_schema(
        responses={201: s.ApiKeyCreatedSerializer},
        summary="Create an API key pair; its secret is shown in this answer only",
        description=(
            "The key signs Binance-style SIGNED requests (X-MBX-APIKEY and an HMAC-SHA256 signature with the secret). "
            'Every key can read; "trade" must be asked for. 409 api_key_limit_reached past '
            f"{settings.API_KEYS_PER_USER} live keys per account."
        ),
    )
    def post(self, request: Request) -> Response:
        me = selectors.user_get_active(user_id=request.user.id)
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        created = services.api_key_create(user_id=me.id, request_id=request_id(request), **serializer.validated_data)
        body = {**s.ApiKeySerializer(created.key).data, "secret": created.secret}
        return Response(s.ApiKeyCreatedSerializer(body).data, status=status.HTTP_201_CREATED)


class ApiKeyView(GenericAPIView):
    serializer_class = None

    @extend_schema(
        parameters=[OpenApiParameter("key_id", OpenApiTypes.UUID, OpenApiParameter.PATH)],
        responses={204: None},
        summary="Revoke one of the caller's API keys: it stops working at once",
        description="404 for a key that is not the caller's or is already revoked.",
    )
    def delete(self, request: Request, key_id: uuid.UUID) -> Response:
        me = selectors.user_get_active(user_id=request.user.id)
        services.api_key_revoke(user_id=me.id, key_id=key_id, request_id=request_id(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


class GatewayCheckView(BinanceView):
    """The gateway's check of a Binance /api/v3 request by API key (infra/nginx/binance.js), before it forwards the
    request to the service that owns the path: 200 with the access token to forward, or Binance's refusal, which
    the gateway answers the client with. Not routed by the gateway to clients (it is no path of routes.toml); a
    caller gains nothing here it could not do by sending the signed request itself.

    Body: {"api_key": X-MBX-APIKEY, "query": the raw query string, "body": the raw form body, "signed": bool}.
    """

    @extend_schema(exclude=True)
    def post(self, request: Request) -> Response:
        data = request.data
        fields = {name: data.get(name, "") for name in ("api_key", "query", "body")} if isinstance(data, dict) else {}
        signed = data.get("signed", True) if isinstance(data, dict) else None
        if not fields or not all(isinstance(v, str) for v in fields.values()) or not isinstance(signed, bool):
            raise BinanceError(binance.MANDATORY_PARAM_EMPTY_OR_MALFORMED, "Malformed gateway check.")
        identity = services.check_gateway_request(signed=signed, **fields)
        token = api_key_access_token(
            user_id=identity.user_id, api_key_id=identity.api_key_id, permissions=identity.permissions
        )
        return Response({"token": token, "expires_in": settings.API_KEY_TOKEN_LIFETIME_S})
