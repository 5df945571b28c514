"""Shared package of the paper-trading platform: every service builds on it, none imports another."""
