"""Error pages: 403, 404 and 500 are the product's own, and the 500 renders without a request."""

from __future__ import annotations

import pytest
from django.template.loader import get_template
from django.test import Client

from tests.conftest import login


@pytest.fixture
def production_errors(settings):  # type: ignore[no-untyped-def]
    settings.DEBUG = False


def test_404_page(client, follower_a, production_errors):
    response = login(client, follower_a.user).get("/no/such/page/")
    assert response.status_code == 404
    assert "Nothing here" in response.content.decode()


def test_403_page(client, follower_a, production_errors):
    response = login(client, follower_a.user).get("/master/")
    assert response.status_code == 403
    assert "You may not open this page" in response.content.decode()


def test_500_page_renders_without_a_request():
    html = get_template("500.html").render({})
    assert "Something went wrong on our side" in html


def test_500_for_a_crash(follower_a, production_errors, monkeypatch):
    from trading import views

    def boom(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("boom")

    monkeypatch.setattr(views.selectors, "board_state", boom)
    client = Client(raise_request_exception=False)
    login(client, follower_a.user)
    response = client.get("/board/")
    assert response.status_code == 500
    assert "Something went wrong on our side" in response.content.decode()
