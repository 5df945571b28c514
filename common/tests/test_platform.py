"""The shared platform checks also hold for the test-only project."""

from common.testing.platform_checks import *  # noqa: F403
