"""Tables of analytics_svc's candles app."""
