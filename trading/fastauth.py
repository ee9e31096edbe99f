"""The board poll's login check, in two raw indexed reads instead of Django's ORM loads.

Ten thousand followers polling every 5 s is 2,000 requests/s on a 2-core machine: too many to
spend two ORM queries per request on the session and the user (about a millisecond each
here; see docs/BENCHMARKS.md). This module answers one question, "which user does this
request's session authenticate?", with the very checks `django.contrib.auth.get_user`
applies for `ModelBackend` sessions, reading the session row with one raw SELECT and letting
the caller fetch the user's password hash in the same query as the board's state:

* the session cookie names a database session that has not expired;
* its data decodes with Django's own session store (signature checked);
* it holds a user id, a `ModelBackend` backend path that settings still list, and a session
  auth hash equal to the user's current one (changing the password logs out everywhere);
* the user is active.

A worker remembers, per session key, the session data it already decoded and verified (a
bounded LRU): the next poll then reads the session row, the user and the board state in one
query, and only checks that the row still exists unexpired with the same data. It also
remembers which (session hash, password hash) pairs verified, so the HMAC runs once.

Whenever anything is not that plain case (another session engine or backend, a missing or
malformed value, a hash that only a fallback secret verifies) it returns None and the caller
goes through Django's full authentication, which then handles it (redirect to login, session
cycling, 403). It never logs anybody in and never writes.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from functools import cache
from importlib import import_module
from typing import Any

from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, load_backend
from django.contrib.auth.backends import ModelBackend
from django.contrib.sessions.backends.base import SessionBase
from django.contrib.sessions.models import Session
from django.db import connection
from django.http import HttpRequest
from django.utils import timezone
from django.utils.crypto import constant_time_compare

from accounts.models import User

_DB_ENGINE = "django.contrib.sessions.backends.db"


@dataclass(frozen=True)
class SessionLogin:
    user_id: int
    session_hash: str


@cache
def _is_plain_model_backend(path: str) -> bool:
    try:
        backend = load_backend(path)
    except ImportError:
        return False
    return isinstance(backend, ModelBackend) and type(backend).get_user is ModelBackend.get_user


@cache
def _session_store() -> type[SessionBase]:
    return import_module(settings.SESSION_ENGINE).SessionStore


_REMEMBERED = 20_000
_lock = threading.Lock()
_sessions: OrderedDict[str, tuple[str, SessionLogin]] = OrderedDict()
_verified: OrderedDict[tuple[str, str], bool] = OrderedDict()


def _remember(cache: OrderedDict[Any, Any], key: Any, value: Any) -> None:
    with _lock:
        cache[key] = value
        cache.move_to_end(key)
        while len(cache) > _REMEMBERED:
            cache.popitem(last=False)


def session_key(request: HttpRequest) -> str | None:
    """The session cookie, when sessions live in the database and it looks like a key."""
    if settings.SESSION_ENGINE != _DB_ENGINE:
        return None
    key = request.COOKIES.get(settings.SESSION_COOKIE_NAME)
    if not key or len(key) > 40 or not key.isalnum():
        return None
    return key


def remembered(key: str) -> tuple[str, SessionLogin] | None:
    """(session data, login) this worker decoded for this key before, if any."""
    with _lock:
        return _sessions.get(key)


def forget(key: str) -> None:
    with _lock:
        _sessions.pop(key, None)


def session_login(request: HttpRequest) -> SessionLogin | None:
    """The user id and session auth hash of the request's session, or None (use Django's)."""
    key = session_key(request)
    if key is None:
        return None
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT session_data FROM {Session._meta.db_table} "  # noqa: S608 - table name from the model
            "WHERE session_key = %s AND expire_date > %s",
            [key, now],
        )
        row = cursor.fetchone()
    if row is None:
        return None
    data: dict[str, Any] = _session_store()().decode(row[0])
    user_id, backend, session_hash = (
        data.get(SESSION_KEY),
        data.get(BACKEND_SESSION_KEY),
        data.get(HASH_SESSION_KEY),
    )
    if not (
        isinstance(user_id, str) and isinstance(backend, str) and isinstance(session_hash, str)
    ):
        return None
    if backend not in settings.AUTHENTICATION_BACKENDS or not _is_plain_model_backend(backend):
        return None
    try:
        pk = User._meta.pk.to_python(user_id)
    except Exception:  # a malformed id is simply "not the plain case"
        return None
    if not isinstance(pk, int):
        return None
    login = SessionLogin(user_id=pk, session_hash=session_hash)
    _remember(_sessions, key, (row[0], login))
    return login


def verifies(login: SessionLogin, *, password_hash: str, is_active: bool) -> bool:
    """Django's session verification for this user row (ModelBackend + auth hash)."""
    if not is_active:
        return False
    pair = (login.session_hash, password_hash)
    with _lock:
        known = _verified.get(pair)
    if known is None:
        user = User(pk=login.user_id, password=password_hash)
        known = constant_time_compare(login.session_hash, user.get_session_auth_hash())
        _remember(_verified, pair, known)
    return known
