"""Account mail through Django's mail framework: to files under the run folder unless a server is configured."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from common import namespace
from users.mail import CONFIRMATION_SUBJECT
from users.models import User
from users.tests.factories import confirm, register, unique_email

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[3]


def test_by_default_mail_is_written_to_files_in_the_run_folder_of_the_namespace():
    from user_svc import settings as configured  # as read from the environment, before the test runner's override

    ns = namespace.current()
    assert configured.EMAIL_BACKEND == "django.core.mail.backends.filebased.EmailBackend"
    run = Path(os.environ.get("PLATFORM_RUN_DIR", ROOT / ".run"))  # .run/, unless the checkout moved it
    assert Path(configured.EMAIL_FILE_PATH) == run / (f"ns/{ns}/mail" if ns else "mail")


def test_a_registration_writes_a_confirmation_file_whose_token_confirms_the_address(api, sent, settings, tmp_path):
    settings.EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    settings.EMAIL_FILE_PATH = str(tmp_path / "mail")
    email = unique_email()

    with sent():
        register(api, email=email)
    files = list((tmp_path / "mail").iterdir())
    text = files[0].read_text()
    token = next(line for line in text.splitlines() if line.count(":") == 2 and " " not in line)

    assert len(files) == 1
    assert f"Subject: {CONFIRMATION_SUBJECT}" in text and f"To: {email}" in text
    assert confirm(api, token).status_code == 200
    assert User.objects.get(email=email).email_confirmed_at is not None
