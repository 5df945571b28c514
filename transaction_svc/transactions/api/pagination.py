"""Keyset pagination on (executed_at, id), newest first: pages stay exact while new transactions arrive.

DRF's CursorPagination keys on one field plus an offset among equal values, so rows sharing an
execution time (fills of one trade) could repeat or vanish across pages; a keyset on the pair cannot.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Q, QuerySet
from rest_framework.pagination import BasePagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param

from common.exceptions import ApplicationError, parse_count


@dataclass(frozen=True)
class Position:
    executed_at: datetime
    id: uuid.UUID
    backwards: bool  # True: the page before this position (towards newer rows)

    def encode(self) -> str:
        raw = f"{'b' if self.backwards else 'f'}|{self.executed_at.isoformat()}|{self.id}"
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str) -> Position:
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
            direction, moment, row_id = raw.split("|")
            executed_at = datetime.fromisoformat(moment)
            if direction not in ("b", "f") or executed_at.tzinfo is None:
                raise ValueError(raw)
            return cls(executed_at, uuid.UUID(row_id), direction == "b")
        except (ValueError, UnicodeDecodeError, binascii.Error):
            raise ApplicationError("the cursor is not valid", code="invalid_cursor") from None


class KeysetPagination(BasePagination):
    cursor_query_param = "cursor"
    page_size_query_param = "page_size"
    page_size = 50
    max_page_size = 500

    def paginate_queryset(self, queryset: QuerySet, request: Request, view=None) -> list:
        self.request = request
        self.size = self._page_size(request)
        token = request.query_params.get(self.cursor_query_param)
        self.position = Position.decode(token) if token else None
        qs = queryset.order_by("-executed_at", "-id")
        if self.position is not None:
            t, row_id = self.position.executed_at, self.position.id
            if self.position.backwards:
                # The redundant bound lets the planner prune partitions and range-scan the index.
                qs = qs.filter(executed_at__gte=t).filter(Q(executed_at__gt=t) | Q(executed_at=t, id__gt=row_id))
                qs = qs.order_by("executed_at", "id")
            else:
                qs = qs.filter(executed_at__lte=t).filter(Q(executed_at__lt=t) | Q(executed_at=t, id__lt=row_id))
        rows = list(qs[: self.size + 1])
        self.has_more = len(rows) > self.size
        rows = rows[: self.size]
        if self.position is not None and self.position.backwards:
            rows.reverse()
        self.rows = rows
        return rows

    def _page_size(self, request: Request) -> int:
        raw = request.query_params.get(self.page_size_query_param)
        size = parse_count(raw, self.page_size_query_param, minimum=1, maximum=self.max_page_size)
        return self.page_size if size is None else size

    def _link(self, position: Position | None) -> str | None:
        if position is None:
            return None
        url = self.request.build_absolute_uri()
        return replace_query_param(url, self.cursor_query_param, position.encode())

    def _links(self) -> tuple[str | None, str | None]:
        first, last = (self.rows[0], self.rows[-1]) if self.rows else (None, None)
        pos = self.position
        if pos is None:  # the first page: nothing newer to go back to
            return (self._link(Position(last.executed_at, last.id, False)) if self.has_more else None), None
        if not self.rows:  # an empty page: turn around at the position itself
            turned = Position(pos.executed_at, pos.id, not pos.backwards)
            return (self._link(turned), None) if pos.backwards else (None, self._link(turned))
        older = Position(last.executed_at, last.id, False)
        newer = Position(first.executed_at, first.id, True)
        if pos.backwards:
            return self._link(older), (self._link(newer) if self.has_more else None)
        return (self._link(older) if self.has_more else None), self._link(newer)

    def get_paginated_response(self, data) -> Response:
        next_url, previous_url = self._links()
        return Response({"next": next_url, "previous": previous_url, "results": data})

    def get_schema_operation_parameters(self, view) -> list[dict]:
        return [
            {
                "name": self.cursor_query_param,
                "in": "query",
                "required": False,
                "schema": {"type": "string"},
                "description": "opaque position from a previous page's next/previous link",
            },
            {
                "name": self.page_size_query_param,
                "in": "query",
                "required": False,
                "schema": {"type": "integer", "minimum": 1, "maximum": self.max_page_size},
            },
        ]
