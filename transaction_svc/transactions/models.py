"""Tables of transaction_svc's transactions app."""
