"""The Celery app of common/'s test project (the relay runs in a real worker in some tests)."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "common.tests.settings")

from common.celery_app import make_celery_app

app = make_celery_app("platform_common")
