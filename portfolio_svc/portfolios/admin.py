"""Operators' views of portfolio_svc's portfolios app."""
