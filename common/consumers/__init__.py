"""Idempotent Kafka consumers: inbox dedup, handler and offset in order, dead letters through the outbox."""
