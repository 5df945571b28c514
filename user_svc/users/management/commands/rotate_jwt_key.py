"""Sign with a new RS256 key; the old ones stay published and trusted until every token they signed has expired."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from common import jwt_keys


def retire_after_s() -> float:
    """How long a rotated-out key must stay trusted: the longest token it may have signed, the verifiers' clock
    leeway, and a margin for the processes still signing with it until they see the new key."""
    lifetimes = (settings.SIMPLE_JWT["ACCESS_TOKEN_LIFETIME"], settings.SIMPLE_JWT["REFRESH_TOKEN_LIFETIME"])
    return max(t.total_seconds() for t in lifetimes) + settings.JWT_LEEWAY_S + settings.JWT_ROTATION_MARGIN_S


class Command(BaseCommand):
    help = (
        "Make a new signing key and publish it in the JWK set; the previous keys stay trusted until the tokens "
        "they signed have expired (access and refresh lifetimes, plus the leeway), then they are dropped."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--drop-old",
            action="store_true",
            help="distrust the previous keys at once (a leaked key): every token they signed is refused",
        )

    def handle(self, *args: object, drop_old: bool, **options: object) -> None:
        if not settings.JWT_PRIVATE_KEY_FILE:
            raise CommandError("the signing key comes from JWT_PRIVATE_KEY, not a file: rotate it where it is kept")
        private = Path(settings.JWT_PRIVATE_KEY_FILE)
        if private.name != jwt_keys.PRIVATE:
            raise CommandError(f"{private} is not a key folder's {jwt_keys.PRIVATE} (common.jwt_keys)")
        jwks = private.parent / jwt_keys.JWKS
        if not settings.JWT_JWKS_FILE or Path(settings.JWT_JWKS_FILE).resolve() != jwks.resolve():
            raise CommandError(
                f"the verifiers must read {jwks} (JWT_JWKS_FILE is {settings.JWT_JWKS_FILE or 'unset'}): "
                "they would refuse the new key's tokens"
            )
        window = 0.0 if drop_old else retire_after_s()
        kid, kept = jwt_keys.rotate(private.parent, retire_after_s=window)
        self.stdout.write(f"signing with key {kid}; published in {jwks}")
        if kept:
            self.stdout.write(f"previous keys trusted for {window:.0f} s more: {', '.join(kept)}")
        else:
            self.stdout.write("no previous key is trusted any more")
