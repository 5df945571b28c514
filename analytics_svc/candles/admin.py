"""Operators' views of analytics_svc's candles app."""
