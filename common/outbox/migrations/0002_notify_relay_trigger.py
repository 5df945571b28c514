"""A NOTIFY on `outbox_relay` from every statement that inserts outbox rows: the relay loop wakes at the commit.

Statement-level, so a multi-row INSERT notifies once; PostgreSQL folds identical notifications of one
transaction into one and delivers them only at commit (never after a rollback). The payload is empty: the
relay reads the rows itself, oldest first.
"""

from django.db import migrations

CREATE = """
CREATE FUNCTION outbox_notify_relay() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('outbox_relay', '');
    RETURN NULL;
END
$$;
CREATE TRIGGER outbox_messages_notify_relay
    AFTER INSERT ON outbox_messages
    FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify_relay();
"""

DROP = """
DROP TRIGGER IF EXISTS outbox_messages_notify_relay ON outbox_messages;
DROP FUNCTION IF EXISTS outbox_notify_relay();
"""


class Migration(migrations.Migration):
    dependencies = [("outbox", "0001_initial")]

    operations = [migrations.RunSQL(CREATE, reverse_sql=DROP)]
