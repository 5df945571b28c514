"""Set-based writes for batch handlers: one UPDATE of many rows, built from arrays rather than Django's CASE WHEN.

Django's `bulk_update()` compiles a `CASE WHEN pk = ... THEN ...` expression per row and field: correct, but on the
consumers' hot path it cost more Python time than everything else a batch does (py-spy, bench/saga.py). Here the
new values travel as one typed array per column and PostgreSQL joins them:

    UPDATE orders AS t SET status = v.status, ... FROM unnest(%s::uuid[], %s::varchar(16)[], ...) AS v(pk, ...)
    WHERE t.id = v.pk

Values go through each field's own `get_db_prep_save`, so Decimals, times, UUIDs and JSON are stored exactly as
`save()` would store them. `auto_now` fields are set to one `now()` for the batch, as `save()` would.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.db import connections
from django.db.models import Model
from django.utils import timezone


def bulk_update(objs: Sequence[Model], fields: Sequence[str], *, using: str = "default") -> int:
    """Write `fields` of every object (one model) with ONE statement; returns the number of rows updated."""
    if not objs:
        return 0
    model = type(objs[0])
    meta = model._meta
    connection = connections[using]
    pk = meta.pk
    targets = [meta.get_field(name) for name in fields]
    now = timezone.now()
    for field in targets:
        if getattr(field, "auto_now", False):
            for obj in objs:
                setattr(obj, field.attname, now)
    columns = [pk, *targets]
    arrays = [[column.get_db_prep_save(getattr(obj, column.attname), connection) for obj in objs] for column in columns]
    quote = connection.ops.quote_name
    names = [f"c{i}" for i in range(len(columns))]
    sets = ", ".join(f"{quote(field.column)} = v.{name}" for field, name in zip(targets, names[1:], strict=True))
    casts = ", ".join(f"%s::{column.db_type(connection)}[]" for column in columns)
    sql = (
        f"UPDATE {quote(meta.db_table)} AS t SET {sets} "  # noqa: S608 - names from the model, values as parameters
        f"FROM unnest({casts}) AS v({', '.join(names)}) WHERE t.{quote(pk.column)} = v.{names[0]}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, arrays)
        return cursor.rowcount


def delete_older_than(table: str, column: str, *, older_than, chunk: int = 10_000, using: str = "default") -> int:
    """Delete the rows of `table` whose `column` is before now() - older_than, `chunk` at a time (short
    transactions, no long lock); returns how many. The retention purges of the outbox and the inbox."""
    total = 0
    with connections[using].cursor() as cursor:
        while True:
            cursor.execute(
                f"DELETE FROM {table} WHERE id IN (SELECT id FROM {table} WHERE {column} < now() - %s LIMIT %s)",  # noqa: S608 - names from code
                [older_than, chunk],
            )
            total += cursor.rowcount
            if cursor.rowcount < chunk:
                return total
