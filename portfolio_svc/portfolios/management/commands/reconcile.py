"""`manage.py reconcile`: balances against the ledger and open reservations per user and asset; 1 on a difference."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser

from portfolios.amounts import amount_str
from portfolios.selectors import reconciliation_report


class Command(BaseCommand):
    help = (
        "Per user and asset: available + locked must equal credits + settled fill credits - settled debits - fees "
        "(as ledgered here), and locked must equal what open reservations hold. Exits 1 on any difference."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--differences-only", action="store_true", help="print only rows that do not reconcile")

    def handle(self, *args: object, differences_only: bool, **options: object) -> None:
        rows = reconciliation_report()
        bad = [r for r in rows if r.problems]
        self.stdout.write(f"{'user':36}  {'asset':6} {'available':>22} {'locked':>22} {'expected total':>22}  status")
        for r in bad if differences_only else rows:
            status = "; ".join(r.problems) or "ok"
            self.stdout.write(
                f"{r.user_id!s:36}  {r.asset:6} {amount_str(r.available):>22} {amount_str(r.locked):>22} "
                f"{amount_str(r.expected_total):>22}  {status}"
            )
        self.stdout.write(f"{len(rows)} user/asset pairs checked, {len(bad)} with differences")
        if bad:
            raise CommandError(f"{len(bad)} user/asset pair(s) do not reconcile", returncode=1)
