"""The ledger of executed trades."""
