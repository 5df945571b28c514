"""OpenAPI schema additions every service shares: the error answers every operation can give, documented once.

A view documents its success answers; what any request can get besides (a 4xx in the platform's error shape,
or in Binance's for the /api/v3 endpoints, and a 503 when the database is away) is added here by a
drf-spectacular postprocessing hook, so a client generator or a fuzzer reads every answer the service gives.
"""

from __future__ import annotations

import copy
from typing import Any

ERROR = {
    "type": "object",
    "description": "The platform's error shape",
    "properties": {
        "code": {"type": "string", "description": "machine-readable error code"},
        "message": {"type": "string"},
        "details": {"type": "object", "additionalProperties": True},
    },
    "required": ["code", "message", "details"],
}
BINANCE_ERROR = {
    "type": "object",
    "description": "Binance's error shape",
    "properties": {"code": {"type": "integer"}, "msg": {"type": "string"}},
    "required": ["code", "msg"],
}
BINANCE_PREFIX = "/api/v3/"


def signed_parameters() -> list:
    """What every Binance SIGNED endpoint documents besides its own parameters; the gateway checks them."""
    from drf_spectacular.types import OpenApiTypes
    from drf_spectacular.utils import OpenApiParameter

    def checked(name: str, schema: dict) -> OpenApiParameter:
        return OpenApiParameter(name, schema, description="checked by the gateway")

    return [
        OpenApiParameter(
            "X-MBX-APIKEY", OpenApiTypes.STR, OpenApiParameter.HEADER, description="checked by the gateway"
        ),
        checked("timestamp", {"type": "integer", "minimum": 0, "maximum": 2**63 - 1}),
        checked("recvWindow", {"type": "integer", "minimum": 0, "maximum": 60000}),
        checked("signature", {"type": "string", "pattern": "^[0-9a-fA-F]{64}$"}),
    ]


_METHODS = ("get", "put", "post", "delete", "patch", "options", "head")


def _answer(name: str, description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}},
    }


def error_responses(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """POSTPROCESSING_HOOKS entry: every operation may answer 4XX (the client's error) and 503 (retry)."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas.setdefault("Error", ERROR)
    schemas.setdefault("BinanceError", BINANCE_ERROR)
    for path, item in result.get("paths", {}).items():
        name = "BinanceError" if path.startswith(BINANCE_PREFIX) else "Error"
        for method in _METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            responses = operation.setdefault("responses", {})
            responses.setdefault("4XX", _answer(name, "The request was refused; the body says why."))
            responses.setdefault("503", _answer(name, "A dependency (the database) is unavailable; retry."))
    return result


def with_listed_symbols(result: dict[str, Any], symbols: Any) -> dict[str, Any]:
    """A service's POSTPROCESSING_HOOKS helper: every `symbol` parameter and request-body property takes the
    symbols listed now (`symbols`: a callable; a database not migrated yet leaves the declared schema)."""
    from django.db import DatabaseError

    try:
        listed = list(symbols())
    except DatabaseError:
        return result
    if not listed:
        return result
    enum = {"type": "string", "enum": listed}
    for item in result.get("paths", {}).values():
        for operation in (op for op in item.values() if isinstance(op, dict)):
            for parameter in operation.get("parameters", []):
                if parameter.get("name") == "symbol":
                    parameter["schema"] = enum
            for content in operation.get("requestBody", {}).get("content", {}).values():
                # A copy: a raw schema is a module constant, shared by every generation of the schema.
                schema = content["schema"] = copy.deepcopy(content.get("schema", {}))
                for variant in schema.get("oneOf", [schema]):
                    if "symbol" in variant.get("properties", {}):
                        variant["properties"] = {**variant["properties"], "symbol": enum}
    return result
