"""analytics_svc answers as a platform service: health, readiness, schema, docs and admin over real HTTP."""

from common.testing.platform_checks import *  # noqa: F403 - the shared checks run in every service
