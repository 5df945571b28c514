"""Database per service is enforced by PostgreSQL: each role opens its own database and no other."""

from __future__ import annotations

import psycopg2
import pytest

from tests.e2e.conftest import manage_all

infra = manage_all.infra
PAIRS = [(role, db_owner) for role in infra.DATABASES for db_owner in infra.DATABASES if role != db_owner]


def _connect(role: str, database: str):
    return psycopg2.connect(
        host="127.0.0.1",
        port=infra.PG_PORT,
        user=role,
        password=infra.role_password(role),
        dbname=database,
        connect_timeout=5,
    )


@pytest.mark.parametrize("role", list(infra.DATABASES))
def test_a_service_role_opens_its_own_database(role):
    with _connect(role, infra.DATABASES[role]) as conn, conn.cursor() as cursor:
        cursor.execute("SELECT current_user, current_database()")
        assert cursor.fetchone() == (role, infra.DATABASES[role])
    conn.close()


@pytest.mark.parametrize(("role", "other"), PAIRS)
def test_a_service_role_cannot_open_another_services_database(role, other):
    with pytest.raises(psycopg2.OperationalError, match="permission denied for database"):
        _connect(role, infra.DATABASES[other])
