"""Accounts, JWT issuing and user-events."""
