"""The API fuzzed from its own OpenAPI document (schemathesis): whatever the input, no 500,
the answer is the envelope in JSON, and it conforms to the documented status codes and
schemas. Run as a master and as a follower, each with a bearer token."""

from __future__ import annotations

import json

import pytest
import schemathesis
from django.core import signals
from django.core.handlers.wsgi import WSGIHandler
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.api.conftest import bearer
from tests.factories import CopyTradeFactory

# Server errors are asserted below: never a 5xx.
schemathesis_checks = [
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def _app(environ, start_response):  # type: ignore[no-untyped-def]
    """Django's WSGI handler, keeping the test's database connection open between requests
    (as django.test.Client does: request_started/finished would close it)."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        response = WSGIHandler()(environ, start_response)
        body = list(response)
        response.close()
        return body
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


@pytest.fixture
def api_schema(db):  # type: ignore[no-untyped-def]
    return schemathesis.openapi.from_wsgi("/api/openapi.json", _app, headers={"Host": "testserver"})


schema = schemathesis.pytest.from_fixture("api_schema")


def _seed_and_headers(user, *followers):  # type: ignore[no-untyped-def]
    for follower in followers:
        for status in ("PENDING", "SENDING", "SUCCESS"):
            CopyTradeFactory(follower=follower, status=status)
    return {"Host": "testserver", "Authorization": bearer(user)["HTTP_AUTHORIZATION"]}


def _check(case, headers):  # type: ignore[no-untyped-def]
    response = case.call(headers=headers)
    case.validate_response(response, checks=schemathesis_checks)
    body = json.loads(response.content)
    assert response.status_code < 500, body
    assert set(body) == {"ok", "message", "data", "error"}
    assert body["ok"] is (response.status_code == 200)


FUZZ = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture
def master_headers(follower_a, follower_b, follower_c):  # type: ignore[no-untyped-def]
    return _seed_and_headers(follower_a.master.user, follower_a, follower_b, follower_c)


@pytest.fixture
def follower_headers(follower_a, follower_b, follower_c):  # type: ignore[no-untyped-def]
    return _seed_and_headers(follower_a.user, follower_a, follower_b, follower_c)


@schema.parametrize()
@FUZZ
def test_api_as_master_never_fails_on_any_input(case, master_headers):  # type: ignore[no-untyped-def]
    _check(case, master_headers)


@schema.parametrize()
@FUZZ
def test_api_as_follower_never_fails_on_any_input(case, follower_headers):  # type: ignore[no-untyped-def]
    _check(case, follower_headers)
