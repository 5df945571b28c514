"""The envelope: CloudEvents 1.0 JSON with correlation, causation and trace context; contracts enforced."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from common.correlation import caused_by
from common.events import Envelope, MalformedEvent, UnknownEventType, registered_types
from common.topics import Topic


def test_a_new_event_is_a_cloudevents_envelope_with_its_contract():
    envelope = Envelope.new(
        "balance.credited",
        source="portfolio_svc",
        subject="p-1",
        data={
            "user_id": "u-1",
            "portfolio_id": "p-1",
            "asset": "USDT",
            "amount": Decimal("10000.00"),
            "reason": "signup",
        },
        causation_id="e-0",
        traceparent="00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    )

    doc = json.loads(envelope.to_json())

    assert doc["specversion"] == "1.0"
    assert doc["type"] == "balance.credited" and doc["source"] == "portfolio_svc" and doc["subject"] == "p-1"
    assert doc["datacontenttype"] == "application/json"
    assert doc["dataschema"] == "urn:platform:event:balance.credited:v1"
    assert doc["data"]["amount"] == "10000.00"  # Decimal travels as a string, never a float
    assert doc["correlationid"] == doc["id"]  # nothing caused it: it starts its own chain
    assert doc["causationid"] == "e-0"
    assert doc["traceparent"].startswith("00-0af7651916cd43dd")
    assert doc["time"].endswith("Z")
    assert Envelope.from_json(envelope.to_json()) == envelope


def test_unregistered_type_and_invalid_data_are_refused_when_written():
    with pytest.raises(UnknownEventType):
        Envelope.new("order.exploded", source="x", subject="1", data={})
    with pytest.raises(MalformedEvent, match="amount"):
        Envelope.new(
            "balance.credited",
            source="x",
            subject="1",
            data={"user_id": "u", "portfolio_id": "p", "asset": "USDT", "amount": 12.5, "reason": "r"},
        )


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"not json", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"id": "1"}', "lacks"),
        (None, "empty"),
    ],
)
def test_malformed_envelopes_are_refused_when_read(raw, reason):
    with pytest.raises(MalformedEvent, match=reason):
        Envelope.from_json(raw)


def test_a_well_formed_envelope_of_an_unknown_type_is_told_apart_from_a_malformed_one():
    doc = json.loads(Envelope.new("test.pinged", source="x", subject="1", data={"seq": 1}).to_json())
    doc["type"] = "order.teleported"

    with pytest.raises(UnknownEventType):
        Envelope.from_json(json.dumps(doc))


def test_data_that_breaks_the_contract_is_malformed_when_read():
    doc = json.loads(Envelope.new("test.pinged", source="x", subject="1", data={"seq": 1}).to_json())
    doc["data"]["seq"] = "one"

    with pytest.raises(MalformedEvent, match="seq"):
        Envelope.from_json(json.dumps(doc))


def test_events_published_while_handling_an_event_carry_its_chain():
    with caused_by(correlation_id="chain-1", causation_id="event-7"):
        from common.correlation import current_cause

        assert current_cause().correlation_id == "chain-1"
        assert current_cause().causation_id == "event-7"
    assert current_cause().correlation_id is None


def test_every_contract_names_a_platform_topic():
    topics = {t.value for t in Topic}
    for contract in registered_types().values():
        if not contract.type.startswith("test."):
            assert contract.topic in topics, contract.type
