"""WSGI entry point of user_svc."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "user_svc.settings")
application = get_wsgi_application()
