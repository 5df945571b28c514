"""Tables of order_svc's orders app."""
