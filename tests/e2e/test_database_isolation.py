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


@pytest.mark.parametrize("role", [*infra.DATABASES, *infra.TEST_ONLY_ROLES])
def test_a_service_role_has_a_password_of_its_own_and_no_power_to_make_databases(role):
    password = infra.role_password(role)
    assert password != f"{role}-local"  # the old public convention
    assert len(password) >= 24
    secret = infra.credentials.path("postgres", role)
    assert secret.stat().st_mode & 0o777 == 0o600
    assert secret.parent.stat().st_mode & 0o777 == 0o700
    with pytest.raises(psycopg2.OperationalError, match="password authentication failed"):
        psycopg2.connect(
            host="127.0.0.1",
            port=infra.PG_PORT,
            user=role,
            password=f"{role}-local",
            dbname="postgres",
            connect_timeout=5,
        )
    conn = _connect(role, "postgres")
    conn.autocommit = True  # CREATE DATABASE runs outside a transaction block
    with conn.cursor() as cursor:
        cursor.execute("SELECT rolcreatedb, rolsuper, rolcreaterole FROM pg_roles WHERE rolname = current_user")
        assert cursor.fetchone() == (False, False, False)
        with pytest.raises(psycopg2.errors.InsufficientPrivilege, match="permission denied to create database"):
            cursor.execute("CREATE DATABASE test_not_allowed")
    conn.close()


@pytest.mark.parametrize("user", ["postgres", "order_svc"])
def test_the_clusters_socket_trusts_no_one(user):
    """No `trust` line: over the local socket too, a connection without the password is refused."""
    hba = infra.Postgres()
    with pytest.raises(psycopg2.OperationalError, match="password"):
        psycopg2.connect(
            host=str(hba.sock), port=infra.PG_PORT, user=user, password="", dbname="postgres", connect_timeout=5
        )
    with (
        psycopg2.connect(
            host=str(hba.sock),
            port=infra.PG_PORT,
            user=user,
            password=infra.role_password(user),
            dbname="postgres",
            connect_timeout=5,
        ) as conn,
        conn.cursor() as cursor,
    ):
        cursor.execute("SELECT current_user")
        assert cursor.fetchone() == (user,)
    conn.close()
