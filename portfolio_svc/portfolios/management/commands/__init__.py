"""Management commands of portfolio_svc."""
