"""API keys: created (the secret shown once), revoked by their owner or an operator, and the check of a
Binance-style SIGNED request (verify_signed_request), which the gateway asks for before every SIGNED request it
forwards (check_gateway_request: the raw query string and body as the client sent them).

The check reads the database every time (one indexed query), so a revoked key stops working with the commit
that revoked it, in every process; no cache to invalidate.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import string
import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs

from django.conf import settings
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from rest_framework import status

from common.exceptions import ApplicationError, Conflict, NotFound
from users import encryption
from users.models import API_KEY_LENGTH, ApiKey, ApiKeyPermission, User, UserEvent
from users.services.audit import user_event_record

_ALPHABET = string.ascii_letters + string.digits
_KEY_FORMAT = re.compile(rf"[A-Za-z0-9]{{{API_KEY_LENGTH}}}")
_SIGNATURE_FORMAT = re.compile(r"[0-9a-fA-F]{64}")  # hex HMAC-SHA256; Binance accepts either case
_MILLIS = re.compile(r"[0-9]{1,20}")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# Binance's codes and messages (binance-spot-api-docs, errors.md) for what this check refuses.
API_KEY_FORMAT_INVALID = -2014
REJECTED_MBX_KEY = -2015
INVALID_SIGNATURE = -1022
INVALID_TIMESTAMP = -1021
MANDATORY_PARAM_EMPTY_OR_MALFORMED = -1102
BAD_RECV_WINDOW = -1131
TOO_MANY_PARAMETERS = -1101
DEFAULT_RECV_WINDOW_MS = 5000
MAX_RECV_WINDOW_MS = 60000
MAX_AHEAD_MS = 1000  # a timestamp may run this far ahead of the server's clock


class ApiKeyLimitReached(Conflict):
    code = "api_key_limit_reached"


class ApiKeyPermissionsInvalid(ApplicationError):
    code = "invalid"


class SignedRequestRefused(ApplicationError):
    """A SIGNED request Binance would refuse. `code` is Binance's (as a string, "-2015": common.binance renders an
    ApplicationError with such a code as {"code": -2015, "msg": ...}); `binance_code` the same as an int."""

    def __init__(self, binance_code: int, message: str, *, status_code: int = status.HTTP_400_BAD_REQUEST):
        super().__init__(message, code=str(binance_code))
        self.binance_code = binance_code
        self.status_code = status_code


@dataclass(frozen=True)
class NewApiKey:
    key: ApiKey
    secret: str  # in clear: this is the only time it is ever handed out


@dataclass(frozen=True)
class SignedRequestIdentity:
    """Whom a correctly signed request acts for, and what its key may do (the claims of the JWT it earns)."""

    user_id: uuid.UUID
    api_key_id: uuid.UUID
    permissions: tuple[str, ...]


def _random_token() -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(API_KEY_LENGTH))


def _can_trade(permissions: Collection[str]) -> bool:
    asked = set(permissions)
    unknown = asked - set(ApiKeyPermission.values)
    if unknown:
        raise ApiKeyPermissionsInvalid(
            f"Unknown permissions: {', '.join(sorted(unknown))}.", details={"fields": {"permissions": sorted(unknown)}}
        )
    if ApiKeyPermission.READ not in asked:
        raise ApiKeyPermissionsInvalid(
            'Every key can read: permissions must include "read".', details={"fields": {"permissions": ["read"]}}
        )
    return ApiKeyPermission.TRADE in asked


def api_key_create(
    *, user_id: uuid.UUID, label: str, permissions: Collection[str] = ("read",), request_id: str = ""
) -> NewApiKey:
    """A new key pair for the account: its secret is returned here and never again (only its ciphertext is kept).

    Raises ValidationError for a blank or too long label, ApiKeyPermissionsInvalid (400) for unknown permissions or
    none to read, ApiKeyLimitReached (409) when the account already holds API_KEYS_PER_USER live keys. The
    account's row is locked while counting, so two concurrent creations cannot both take the last place.
    """
    secret = _random_token()
    key = ApiKey(
        user_id=user_id,
        label=label.strip(),
        api_key=_random_token(),
        secret_ciphertext=encryption.encrypt(secret),
        can_trade=_can_trade(permissions),
    )
    key.full_clean(exclude=["user"], validate_unique=False, validate_constraints=False)
    with transaction.atomic():
        user = User.objects.select_for_update().get(pk=user_id)
        limit = settings.API_KEYS_PER_USER
        if ApiKey.objects.filter(user=user, revoked_at__isnull=True).count() >= limit:
            raise ApiKeyLimitReached(
                f"An account holds at most {limit} API keys; revoke one first.", details={"limit": limit}
            )
        key.user = user
        key.save(force_insert=True)
        user_event_record(user, UserEvent.Kind.API_KEY_CREATED, actor=user, request_id=request_id, data=_trail(key))
    return NewApiKey(key=key, secret=secret)


def _trail(key: ApiKey) -> dict[str, object]:
    return {"api_key_id": str(key.id), "label": key.label, "prefix": key.key_prefix, "permissions": key.permissions}


def _revoke(keys: QuerySet[ApiKey], *, actor_id: uuid.UUID | None, request_id: str) -> list[ApiKey]:
    """Revoke the live keys among `keys` at once: the secret erased, one history event per key."""
    with transaction.atomic():
        live = list(keys.filter(revoked_at__isnull=True).select_for_update().order_by("pk"))
        if not live:
            return []
        now = timezone.now()
        ApiKey.objects.filter(pk__in=[k.pk for k in live]).update(revoked_at=now, secret_ciphertext="")
        UserEvent.objects.bulk_create(
            UserEvent(
                user_id=k.user_id,
                kind=UserEvent.Kind.API_KEY_REVOKED,
                actor_id=actor_id,
                request_id=request_id[:128],
                data=_trail(k),
            )
            for k in live
        )
    for k in live:
        k.revoked_at, k.secret_ciphertext = now, ""
    return live


def api_key_revoke(*, user_id: uuid.UUID, key_id: uuid.UUID, request_id: str = "") -> ApiKey:
    """The owner revokes one of its live keys; NotFound (404) for a key of someone else's, unknown or revoked."""
    revoked = _revoke(ApiKey.objects.filter(pk=key_id, user_id=user_id), actor_id=user_id, request_id=request_id)
    if not revoked:
        raise NotFound("No such API key.")
    return revoked[0]


def api_keys_revoke(*, key_ids: Collection[uuid.UUID], actor: User | None, request_id: str = "") -> int:
    """An operator revokes keys, whoever owns them; those already revoked are left as they are. How many were."""
    actor_id = actor.pk if actor is not None else None
    return len(_revoke(ApiKey.objects.filter(pk__in=list(key_ids)), actor_id=actor_id, request_id=request_id))


def api_keys_reencrypt() -> int:
    """Encrypt every live secret under the first API_KEY_ENCRYPTION_KEY (after a key was put first): the rotation's
    middle step, before the old key is dropped. Compare-and-set per row, so a key revoked meanwhile stays erased.
    How many rows were rewritten."""
    rewritten = 0
    live = ApiKey.objects.filter(revoked_at__isnull=True).values_list("pk", "secret_ciphertext")
    for pk, ciphertext in live.iterator(chunk_size=500):
        rewritten += ApiKey.objects.filter(pk=pk, secret_ciphertext=ciphertext).update(
            secret_ciphertext=encryption.reencrypt(ciphertext)
        )
    return rewritten


def _millis(value: str | int | None, name: str) -> int | None:
    if value is None or value == "":
        return None
    text = str(value)
    if not _MILLIS.fullmatch(text):
        raise SignedRequestRefused(
            MANDATORY_PARAM_EMPTY_OR_MALFORMED,
            f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.",
        )
    return int(text)


def _check_timestamp(timestamp: str | int | None, recv_window: str | int | None, now_ms: int) -> None:
    """Binance's rule: timestamp < now + 1000 ms and now - timestamp <= recvWindow (5000 by default, at most
    60000)."""
    sent = _millis(timestamp, "timestamp")
    if sent is None:
        raise SignedRequestRefused(
            MANDATORY_PARAM_EMPTY_OR_MALFORMED,
            "Mandatory parameter 'timestamp' was not sent, was empty/null, or malformed.",
        )
    window = _millis(recv_window, "recvWindow")
    window = DEFAULT_RECV_WINDOW_MS if window is None else window
    if window > MAX_RECV_WINDOW_MS:
        raise SignedRequestRefused(BAD_RECV_WINDOW, f"recvWindow must be less than {MAX_RECV_WINDOW_MS}.")
    if sent >= now_ms + MAX_AHEAD_MS:
        raise SignedRequestRefused(
            INVALID_TIMESTAMP, "Timestamp for this request was 1000ms ahead of the server's time."
        )
    if now_ms - sent > window:
        raise SignedRequestRefused(INVALID_TIMESTAMP, "Timestamp for this request is outside of the recvWindow.")


def verify_signed_request(
    *,
    api_key: str,
    payload: str | bytes,
    signature: str,
    timestamp: str | int | None,
    recv_window: str | int | None = None,
    now: datetime | None = None,
) -> SignedRequestIdentity:
    """Check a SIGNED request as Binance does and say whom it acts for.

    `api_key` is the X-MBX-APIKEY header; `payload` the signed text (the query string followed directly by the
    body, without the `signature` parameter); `signature` the hex HMAC-SHA256 of the payload under the key's
    secret; `timestamp` and `recvWindow` the request's own (from the signed parameters) in milliseconds.

    Raises SignedRequestRefused with Binance's code: -2014 (401) for a malformed key, -2015 (401) for a key that is
    unknown, revoked or of a deactivated account, -1022 (400) for a wrong or malformed signature, then -1102,
    -1131 or -1021 (400) for a missing timestamp, a too wide recvWindow or a stale or future timestamp. The
    timestamp is judged only once the signature proved it is the signer's.

    A success writes last_used_at when it is older than API_KEY_LAST_USED_RESOLUTION_S (one UPDATE per key per
    minute at most), otherwise nothing: the check is one indexed read.
    """
    if not _KEY_FORMAT.fullmatch(api_key or ""):
        raise SignedRequestRefused(API_KEY_FORMAT_INVALID, "API-key format invalid.", status_code=401)
    key = (
        ApiKey.objects.filter(api_key=api_key, revoked_at__isnull=True, user__is_active=True)
        .only("id", "user_id", "secret_ciphertext", "can_trade", "last_used_at")
        .first()
    )
    if key is None:
        raise SignedRequestRefused(REJECTED_MBX_KEY, "Invalid API-key, IP, or permissions for action.", status_code=401)
    if not _SIGNATURE_FORMAT.fullmatch(signature or ""):
        raise SignedRequestRefused(INVALID_SIGNATURE, "Signature for this request is not valid.")
    message = payload.encode() if isinstance(payload, str) else payload
    expected = hmac.new(encryption.decrypt(key.secret_ciphertext).encode(), message, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, signature.lower()):
        raise SignedRequestRefused(INVALID_SIGNATURE, "Signature for this request is not valid.")
    now = now or timezone.now()
    _check_timestamp(timestamp, recv_window, (now - _EPOCH) // timedelta(milliseconds=1))
    stale = now - timedelta(seconds=settings.API_KEY_LAST_USED_RESOLUTION_S)
    if key.last_used_at is None or key.last_used_at <= stale:
        # Conditional: of the processes that saw the same stale value, the first one writes.
        ApiKey.objects.filter(Q(last_used_at__isnull=True) | Q(last_used_at__lte=stale), pk=key.pk).update(
            last_used_at=now
        )
    return SignedRequestIdentity(user_id=key.user_id, api_key_id=key.id, permissions=tuple(key.permissions))


def verify_api_key(api_key: str) -> SignedRequestIdentity:
    """An API-key-only request (Binance's USER_STREAM endpoints): the key is live; no signature or timestamp."""
    if not _KEY_FORMAT.fullmatch(api_key or ""):
        raise SignedRequestRefused(API_KEY_FORMAT_INVALID, "API-key format invalid.", status_code=401)
    key = (
        ApiKey.objects.filter(api_key=api_key, revoked_at__isnull=True, user__is_active=True)
        .only("id", "user_id", "can_trade")
        .first()
    )
    if key is None:
        raise SignedRequestRefused(REJECTED_MBX_KEY, "Invalid API-key, IP, or permissions for action.", status_code=401)
    return SignedRequestIdentity(user_id=key.user_id, api_key_id=key.id, permissions=tuple(key.permissions))


def _without_signature(raw: str) -> tuple[str, list[str]]:
    """The raw parameters without their `signature` (kept byte for byte, in order), and the signatures found."""
    kept, signatures = [], []
    for part in raw.split("&") if raw else []:
        name, _, value = part.partition("=")
        if name == "signature":
            signatures.append(value)
        else:
            kept.append(part)
    return "&".join(kept), signatures


def _decoded(raw: str) -> dict[str, list[str]]:
    return parse_qs(raw, keep_blank_values=True) if raw else {}


def check_gateway_request(*, api_key: str, query: str, body: str, signed: bool) -> SignedRequestIdentity:
    """The gateway's question for one /api/v3 request, with the query string and the form body exactly as sent.

    SIGNED: the signature is the `signature` parameter (in the query string or the body, once) and signs the
    query string followed directly by the body, each without it (Binance's totalParams); `timestamp` and
    `recvWindow` are read from either. Not signed (API-key-only endpoints): the key alone.
    """
    if not signed:
        return verify_api_key(api_key)
    query_payload, in_query = _without_signature(query)
    body_payload, in_body = _without_signature(body)
    params = _decoded(query_payload)
    for name, values in _decoded(body_payload).items():
        params.setdefault(name, []).extend(values)
    signatures = in_query + in_body
    if len(signatures) > 1 or any(len(params.get(name, [])) > 1 for name in ("timestamp", "recvWindow")):
        raise SignedRequestRefused(TOO_MANY_PARAMETERS, "Duplicate values for a parameter detected.")
    if not signatures:
        verify_api_key(api_key)  # an unknown key is refused as such first, as Binance does
        raise SignedRequestRefused(
            MANDATORY_PARAM_EMPTY_OR_MALFORMED,
            "Mandatory parameter 'signature' was not sent, was empty/null, or malformed.",
        )
    return verify_signed_request(
        api_key=api_key,
        payload=query_payload + body_payload,
        signature=signatures[0],
        timestamp=(params.get("timestamp") or [None])[0],
        recv_window=(params.get("recvWindow") or [None])[0],
    )
