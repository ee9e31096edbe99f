"""The web server's access log (the Procfile's gunicorn) never holds a query string: the
broker's sign-in answer arrives as /broker/callback/?authCode=…, and a one-time code or any
other parameter has no place in a log file."""

import contextlib
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.liveserver import web_server

pytestmark = pytest.mark.django_db(transaction=True)


def test_access_log_has_the_path_but_never_the_query_string(tmp_path: Path) -> None:
    access_log = tmp_path / "access.log"
    secret = "AUTHCODE-3f9c1d7e2b"
    with web_server(tmp_path, access_log=access_log) as live:
        for path in (f"/broker/callback/?authCode={secret}&userId=X1", f"/healthz?token={secret}"):
            # a redirect to the login page or an error page is logged all the same
            with contextlib.suppress(urllib.error.HTTPError):
                urllib.request.urlopen(live.url + path, timeout=10).close()  # noqa: S310
        deadline = time.monotonic() + 10
        while "/healthz" not in access_log.read_text() and time.monotonic() < deadline:
            time.sleep(0.1)
    text = access_log.read_text()
    assert "/broker/callback/" in text and "/healthz" in text
    assert secret not in text
    assert "authCode" not in text and "?" not in text
