"""Paper portfolios, balances, reservations and settlement."""
