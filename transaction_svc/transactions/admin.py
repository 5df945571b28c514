"""Operators' views of transaction_svc's transactions app."""
