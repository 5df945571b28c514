"""Tables of portfolio_svc's portfolios app."""
