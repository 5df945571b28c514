"""Pytest fixtures and helpers every service's tests share (loaded as the `platform_common` plugin)."""
