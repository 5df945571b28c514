"""Property-based fuzzing of every service's API from its own OpenAPI schema (schemathesis), against the real
processes: no input gives a server error, and every answer (the errors included) matches what the schema
documents: status code, content type, headers and body.

Each operation gets generated requests, valid and invalid, as a signed-in trader with funds; then the stateful
phase chains operations through the links schemathesis infers (an order placed, then read and cancelled).
Two of schemathesis' checks are left out, on purpose: `positive_data_acceptance` (a schema-valid order can still
be refused by a business rule, funds or filters, which is the answer a client must get) and
`negative_data_rejection` (an empty query value, `?side=`, means "not given", the convention of DRF and of
HTML forms, so the services accept it although no enum lists "").
"""

from __future__ import annotations

import json
import os
from collections import Counter

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    use_after_free,
)

from common import namespace
from common.testing.http import http
from tests.e2e.conftest import manage_all
from tests.e2e.system import System, Trader, publish_trades, until

REPORT = manage_all.infra.RUN / "test-reports" / "fuzz-answers.jsonl"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    use_after_free,
]
# Per operation (about 40 in all): enough to reach every parameter's edges, within the suite's 3 minutes.
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "15"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,  # the same requests every run: a failure here is reproducible, not luck
    suppress_health_check=list(HealthCheck),
    phases=[Phase.explicit, Phase.generate],
)


@pytest.fixture(scope="module")
def system(log_dir):
    running = System(log_dir, env={"TRACING_ENABLED": "false"})
    try:
        running.start_all()
        yield running
    finally:
        running.stop_all()
        _forget_failed_logins()


def _forget_failed_logins() -> None:
    """The fuzzed logins count as failed password attempts from 127.0.0.1 in user_svc's cache (Redis): left
    there, they would throttle the next modules' logins from the same address for the throttle's window."""
    import redis

    client = redis.Redis(host="127.0.0.1", port=manage_all.infra.REDIS_PORT)
    keys = list(client.scan_iter(match=f"{namespace.redis_prefix()}user_svc:*", count=1000))
    if keys:
        client.delete(*keys)


@pytest.fixture(scope="module")
def trader(system) -> Trader:
    """A funded trader, on a market with prices and candles (so the schemas list symbols that have data)."""
    trader = Trader.register(system)
    trader.wait_funded()
    publish_trades("BTCUSDT", [("50000.00", "0.5"), ("50010.00", "0.2")])
    publish_trades("ETHUSDT", [("3000.00", "1.0")])
    ticker = f"{system.urls['analytics_svc']}/api/v3/ticker/price"

    # Earlier modules of the run may have priced other symbols too: these two are what this module needs.
    def priced() -> set[str]:
        rows = http("GET", ticker).json()
        return {row["symbol"] for row in rows} if isinstance(rows, list) else set()

    until(lambda: {"BTCUSDT", "ETHUSDT"} <= priced(), timeout=60, what="candles of the published trades")
    return trader


def _schema(system: System, trader: Trader, service: str):
    base = system.urls[service]
    schema = schemathesis.openapi.from_url(f"{base}/api/schema/?format=json")
    schema.config.base_url = base
    headers = {"Authorization": f"Bearer {trader.token}"}
    return schema, base, headers


def _fuzz(case, base: str, headers: dict[str, str], failures: dict[str, str], statuses: Counter) -> None:
    try:
        response = case.call(base_url=base, headers=headers)
        answer = f"{case.method} {case.path} {response.status_code}"
        statuses[answer] += 1
        if response.status_code == 400 and statuses[answer] == 1:  # why the first refusal was refused, for the report
            statuses[f"{answer} e.g. {response.text[:160]}"] += 0
        case.validate_response(response, checks=CHECKS)
    except AssertionError as exc:  # schemathesis' FailureGroup: what failed, with a curl line to reproduce it
        failures.setdefault(f"{case.method} {case.path}", str(exc)[:3000])
        raise


@pytest.mark.parametrize("service", manage_all.SERVICES)
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=str)
def test_every_operation_with_generated_requests(system, trader, service, mode):
    schema, base, headers = _schema(system, trader, service)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert operations, f"{service}'s schema documents no operation"
    failures: dict[str, str] = {}
    statuses: Counter = Counter()
    for operation in operations:

        @given(case=operation.as_strategy(generation_mode=mode))
        @FUZZ
        def fuzz(case):
            _fuzz(case, base, headers, failures, statuses)

        try:
            fuzz()
        except AssertionError:
            continue  # recorded (shrunk to its smallest example); the other operations still run
        except Unsatisfiable:
            assert mode is GenerationMode.NEGATIVE, f"no valid request to {operation.label} could be generated"
            continue  # nothing in its schema can be made invalid (no parameters, no body)
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    with REPORT.open("a") as report:  # what the generated requests got, per operation: how deep they reached
        report.write(
            json.dumps({"service": service, "mode": str(mode), "answers": dict(sorted(statuses.items()))}) + "\n"
        )
    assert not failures, "\n\n".join(f"--- {name}\n{text}" for name, text in failures.items())


# The services whose schemas have ids one answer gives and another takes (schemathesis infers the links).
@pytest.mark.parametrize("service", ["order_svc", "portfolio_svc"])
def test_stateful_sequences(system, trader, service):
    """Chains of calls along the links schemathesis infers from the schemas (ids one answer gives, the next uses)."""
    schema, base, headers = _schema(system, trader, service)
    machine = schema.as_state_machine()

    class Machine(machine):  # type: ignore[misc, valid-type]
        def get_call_kwargs(self, case):
            return {"base_url": base, "headers": headers}

        def validate_response(self, response, case, **kwargs):
            case.validate_response(response, checks=CHECKS, transport_kwargs=kwargs)

    Machine.run(settings=settings(max_examples=EXAMPLES, stateful_step_count=6, deadline=None, derandomize=True))
