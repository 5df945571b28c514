"""Operators' views of accounts."""
