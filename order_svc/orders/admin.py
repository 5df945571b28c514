"""Operators' views of order_svc's orders app."""
