"""Checks every service passes, imported into each service's tests: real HTTP, database and Kafka."""

from __future__ import annotations

import re

import pytest

from common.testing.http import http

pytestmark = pytest.mark.django_db(transaction=True)


def test_healthz_answers_ok_over_http(live_server, settings):
    result = http("GET", f"{live_server.url}/healthz")

    assert result.status == 200
    assert result.json() == {"status": "ok", "service": settings.SERVICE_NAME}


def test_readyz_is_ready_with_the_real_database_and_broker(live_server):
    result = http("GET", f"{live_server.url}/readyz")

    assert result.status == 200, result.text
    assert result.json()["checks"] == {"database": "ok", "kafka": "ok"}


def test_readyz_names_kafka_when_the_broker_is_unreachable(live_server, settings):
    settings.KAFKA_BOOTSTRAP_SERVERS = "127.0.0.1:9"  # discard port: nothing listens there

    result = http("GET", f"{live_server.url}/readyz")

    assert result.status == 503
    body = result.json()
    assert body["failing"] == ["kafka"]
    assert body["checks"]["database"] == "ok"
    assert "127.0.0.1:9" in body["checks"]["kafka"]


def test_request_id_is_echoed_or_made(live_server):
    given = http("GET", f"{live_server.url}/healthz", headers={"X-Request-ID": "req-123"})
    made = http("GET", f"{live_server.url}/healthz")

    assert given.headers["X-Request-ID"] == "req-123"
    assert re.fullmatch(r"[0-9a-f]{32}", made.headers["X-Request-ID"])


def test_openapi_schema_and_docs_work_offline(live_server):
    schema = http("GET", f"{live_server.url}/api/schema/?format=json")
    docs = http("GET", f"{live_server.url}/api/docs/", headers={"Accept": "text/html"})

    assert schema.status == 200
    assert schema.json()["openapi"].startswith("3.")
    assert docs.status == 200
    assets = re.findall(r'(?:src|href)="([^"]+\.(?:js|css))"', docs.text)
    assert assets, "the docs page loads its UI from static files"
    for asset in assets:
        assert asset.startswith("/"), f"docs asset {asset} is not served locally"
        assert http("GET", f"{live_server.url}{asset}").status == 200


def test_api_root_lists_the_docs(live_server):
    result = http("GET", f"{live_server.url}/api/")

    assert result.status == 200
    assert result.json()["endpoints"]["docs"].endswith("/api/docs/")


def test_admin_is_for_staff_only(live_server):
    login = http("GET", f"{live_server.url}/admin/login/", headers={"Accept": "text/html"})
    index = http("GET", f"{live_server.url}/admin/", headers={"Accept": "text/html"})

    assert login.status == 200
    # urllib follows the redirect to the login page: an anonymous visitor never sees the index.
    assert index.status == 200 and 'name="password"' in index.text


def test_an_unknown_path_is_a_json_404_in_the_error_shape(live_server):
    result = http("GET", f"{live_server.url}/no/such/path")

    assert result.status == 404
    assert result.headers["Content-Type"].startswith("application/json")
    assert result.json() == {"code": "not_found", "message": "no route for /no/such/path", "details": {}}


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/healthz?side=%00", None),  # a query value (GET /api/orders/?side=%00 once answered 500)
        ("GET", "/healthz?%00=1", None),  # a query name
        ("POST", "/api/", {"name": "a\u0000b"}),  # a JSON string: \u0000 in the body
    ],
)
def test_a_nul_character_anywhere_is_a_json_400_before_any_view(live_server, method, path, body):
    result = http(method, f"{live_server.url}{path}", json_body=body)

    assert result.status == 400, result.text
    assert result.json()["code"] == "invalid"
    assert "NUL" in result.json()["message"]


def test_django_error_views_are_the_json_ones():
    from django.urls import get_resolver

    resolver = get_resolver()
    for status in (400, 403, 404, 500):
        view = resolver.resolve_error_handler(status)
        assert view.__module__ == "common.exceptions", (status, view)


def _user(name: str):
    from django.contrib.auth import get_user_model

    model = get_user_model()  # user_svc's signs in by email, the others' by name
    identity = f"{name}@example.com" if model.USERNAME_FIELD == "email" else name
    return model._default_manager.create_user(identity, password="pw-for-tests-only")  # noqa: S106 - a test user


def _staff(username: str, *codenames_of: str):
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Permission

    user = _user(username)
    user.is_staff = True
    user.save()
    user.user_permissions.set(Permission.objects.filter(codename__regex=rf"^({'|'.join(codenames_of)})_"))
    return get_user_model().objects.get(pk=user.pk)  # a fresh instance: no permission cache


def test_admin_actions_that_move_money_or_state_need_the_change_permission(rf):
    """Every action an admin declares acts on state (funds, orders, sagas, messages): a view-only operator is not
    offered it (Django then refuses it when posted), one with the model's change permission is."""
    from django.contrib import admin

    view_only, operator = _staff("viewer", "view"), _staff("operator", "view", "change")
    for model, model_admin in admin.site._registry.items():
        for name in [a for a in model_admin.actions or [] if isinstance(a, str)]:
            needs = set(getattr(getattr(model_admin, name), "allowed_permissions", ()))
            assert needs & {"operate", "change"}, (model, name)  # "change" where the admin lets staff edit rows
            for user, offered in ((view_only, False), (operator, True)):
                request = rf.get(f"/admin/{model._meta.app_label}/{model._meta.model_name}/")
                request.user = user
                assert (name in model_admin.get_actions(request)) is offered, (model, name, user.username)


def test_the_admin_is_for_staff_only_even_signed_in(client):
    client.force_login(_user("trader"))

    response = client.get("/admin/")

    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_the_service_runs_with_its_own_secret_key_from_the_run_folder(settings):
    from common import credentials

    # Local mode: .run/secrets/django/<service>, one per service (not one key in the code for all of them).
    assert credentials.read("django", settings.SERVICE_NAME) == settings.SECRET_KEY


def test_the_consumers_read_exactly_the_topics_the_brokers_acls_let_this_service_read(settings):
    """The ACLs come from common/topics.py's tables: a consumer (or a reader outside the consumer groups, declared by
    settings.PLATFORM_READERS) of a topic missing there could never read it, and a topic there that nothing of the
    service reads is a grant nobody uses."""
    from django.utils.module_loading import import_string

    from common import topics
    from common.consumers.base import consumer_specs

    def declared(names) -> set[str]:
        # A run's scratch topics (common/topics.py SCRATCH_PREFIXES) are granted by prefix to every principal.
        return {t for t in names if not t.startswith(topics.SCRATCH_PREFIXES)}

    consumed = declared(t for spec in consumer_specs().values() for t in spec.topics)
    readers = getattr(settings, "PLATFORM_READERS", None)
    read = declared(import_string(readers)() if readers else ())
    service = settings.SERVICE_NAME
    assert consumed == {t.value for t in topics.CONSUMES.get(service, ())}
    assert read == {t.value for t in topics.READERS.get(service, ())}
    assert consumed | read == set(topics.consumes(service))
    assert settings.KAFKA_SECURITY["sasl.username"] == settings.SERVICE_NAME
