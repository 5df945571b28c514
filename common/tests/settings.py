"""Settings of the test-only project that exercises common/ against the real database and broker."""

from pathlib import Path

from common.settings import service_settings

BASE_DIR = Path(__file__).resolve().parent

globals().update(service_settings(name="platform_common", base_dir=BASE_DIR, apps=["common.tests"]))
ROOT_URLCONF = "common.tests.urls"
WSGI_APPLICATION = None
PLATFORM_CONSUMERS = "common.tests.handlers.CONSUMERS"
OUTBOX_DELIVERY_TIMEOUT_S = 5.0
