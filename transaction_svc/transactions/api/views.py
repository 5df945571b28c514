"""Views of the transactions API: one APIView per operation, each translating HTTP into a selector call."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from decimal import Decimal

from django.db import transaction
from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from transactions.api.pagination import KeysetPagination
from transactions.api.serializers import (
    SummarySerializer,
    TransactionFilterSerializer,
    TransactionOutputSerializer,
    TransactionPageSerializer,
)
from transactions.selectors import (
    EXPORT_COLUMNS,
    TransactionFilters,
    transaction_export_rows,
    transaction_list,
    transaction_summary,
)
from transactions.services import decimal_str

# CSV header names: the API's field names (the row id is the transaction's id there too).
CSV_HEADER = [("transaction_id" if c == "id" else c) for c in EXPORT_COLUMNS]
ROWS_PER_CHUNK = 500


def _filters(request: Request) -> TransactionFilters:
    serializer = TransactionFilterSerializer(data=request.query_params)
    serializer.is_valid(raise_exception=True)
    return serializer.to_filters()


class TransactionListApi(APIView):
    pagination_class = KeysetPagination

    @extend_schema(
        parameters=[TransactionFilterSerializer],
        responses=TransactionPageSerializer,
        summary="The caller's transactions, newest first (keyset cursor pagination)",
    )
    def get(self, request: Request) -> Response:
        queryset = transaction_list(user_id=request.user.id, filters=_filters(request))
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(queryset, request, view=self)
        return paginator.get_paginated_response(TransactionOutputSerializer(page, many=True).data)


def _csv_cell(value: object) -> object:
    if isinstance(value, Decimal):
        return decimal_str(value)
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return value


def csv_chunks(rows: Iterable[tuple]) -> Iterator[str]:
    """The CSV text, ROWS_PER_CHUNK rows at a time: the header first, then rows as the cursor yields them."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    pending = 0
    for row in rows:
        writer.writerow([_csv_cell(v) for v in row])
        pending += 1
        if pending == ROWS_PER_CHUNK:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
            pending = 0
    yield buffer.getvalue()


def _streamed_export(user_id, filters: TransactionFilters) -> Iterator[str]:
    # Inside a transaction the server-side cursor streams rows as PostgreSQL produces them, from one
    # snapshot; closing the response early (client gone) rolls the read-only transaction back.
    with transaction.atomic():
        yield from csv_chunks(transaction_export_rows(user_id=user_id, filters=filters))


class TransactionExportApi(APIView):
    # Errors still answer in JSON; the CSV itself is streamed past DRF's renderers.
    renderer_classes = [JSONRenderer]

    def perform_content_negotiation(self, request: Request, force: bool = False):
        # `Accept: text/csv` must not be refused with a 406 before the export starts.
        return super().perform_content_negotiation(request, force=True)

    @extend_schema(
        parameters=[TransactionFilterSerializer],
        responses={(200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="CSV with a header row")},
        summary="The caller's transactions as CSV, streamed (same filters as the list)",
    )
    def get(self, request: Request) -> StreamingHttpResponse:
        filters = _filters(request)
        response = StreamingHttpResponse(
            _streamed_export(request.user.id, filters), content_type="text/csv; charset=utf-8"
        )
        response["Content-Disposition"] = 'attachment; filename="transactions.csv"'
        response["Cache-Control"] = "no-store"
        return response


class TransactionSummaryApi(APIView):
    @extend_schema(
        parameters=[TransactionFilterSerializer],
        responses=SummarySerializer,
        summary="Per-asset totals of the caller's fills over a range: bought, sold, fees, net",
    )
    def get(self, request: Request) -> Response:
        filters = _filters(request)
        totals = transaction_summary(user_id=request.user.id, filters=filters)
        body = {
            "start": filters.start,
            "end": filters.end,
            "assets": [
                {"asset": t.asset, "bought": t.bought, "sold": t.sold, "fees": t.fees, "net": t.net} for t in totals
            ],
        }
        return Response(SummarySerializer(body).data)
