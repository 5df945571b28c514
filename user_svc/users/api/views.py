"""user_svc's API: one view per operation; each validates its input, calls one service and shapes the answer."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.generics import GenericAPIView
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from users import keys, selectors, services
from users.api import serializers as s
from users.throttling import LoginThrottled
from users.tokens import TokenPair


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

    @extend_schema(responses={201: s.UserSerializer}, summary="Create an account")
    def post(self, request: Request) -> Response:
        user = services.user_register(**self.valid_data(request), request_id=request_id(request))
        return Response(s.UserSerializer(user).data, status=status.HTTP_201_CREATED)


class LoginView(AnonymousView):
    serializer_class = s.LoginSerializer

    @extend_schema(responses={200: s.LoginResponseSerializer}, summary="Exchange email and password for tokens")
    def post(self, request: Request) -> Response:
        user, pair = services.user_login(
            **self.valid_data(request), ip=client_ip(request), request_id=request_id(request)
        )
        return Response({**token_body(pair), "user": s.UserSerializer(user).data})

    def handle_exception(self, exc: Exception) -> Response:
        response = super().handle_exception(exc)
        if isinstance(exc, LoginThrottled):
            response["Retry-After"] = str(exc.retry_after)
        return response


class RefreshView(AnonymousView):
    serializer_class = s.RefreshSerializer

    @extend_schema(responses={200: s.TokenPairSerializer}, summary="Trade a refresh token for a new pair")
    def post(self, request: Request) -> Response:
        return Response(token_body(services.token_refresh(**self.valid_data(request))))


class LogoutView(AnonymousView):
    serializer_class = s.RefreshSerializer

    @extend_schema(responses={204: None}, summary="Revoke a refresh token")
    def post(self, request: Request) -> Response:
        services.token_revoke(**self.valid_data(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


class MeView(GenericAPIView):
    serializer_class = s.UserUpdateSerializer

    @extend_schema(responses={200: s.UserSerializer}, summary="The caller's account")
    def get(self, request: Request) -> Response:
        return Response(s.UserSerializer(selectors.user_get_active(user_id=request.user.id)).data)

    @extend_schema(responses={200: s.UserSerializer}, summary="Change the caller's profile")
    def patch(self, request: Request) -> Response:
        me = selectors.user_get_active(user_id=request.user.id)
        serializer = self.get_serializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        user = services.user_update(
            user_id=me.id, actor=me, request_id=request_id(request), **serializer.validated_data
        )
        return Response(s.UserSerializer(user).data)


class PasswordChangeView(GenericAPIView):
    serializer_class = s.PasswordChangeSerializer

    @extend_schema(
        responses={200: s.TokenPairSerializer},
        summary="Change the caller's password; every other session is logged out",
    )
    def post(self, request: Request) -> Response:
        me = selectors.user_get_active(user_id=request.user.id)
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        pair = services.user_change_password(user_id=me.id, request_id=request_id(request), **serializer.validated_data)
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
