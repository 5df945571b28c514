"""What a service published, read back from its outbox in tests."""

from __future__ import annotations

import json


def published(type_: str, **match: object) -> list[dict]:
    """The data of every outbox event of this type, oldest first, narrowed to those whose data has `match`."""
    from common.outbox.models import OutboxMessage

    rows = OutboxMessage.objects.filter(event_type=type_).order_by("id")
    found = [json.loads(bytes(row.payload))["data"] for row in rows]
    return [data for data in found if all(data.get(k) == v for k, v in match.items())]
