"""copytrade settings: everything from the environment, with safe development defaults.

`COPYTRADE_ENV=production` turns every default into a requirement: no generated secrets,
no DEBUG, HTTPS-only cookies, HSTS. `.env.example` lists every variable.
"""

from __future__ import annotations

from datetime import time as _time
from decimal import Decimal
from pathlib import Path

import dj_database_url
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

from copytrade.lib import devsecrets
from copytrade.lib.env import (
    env_bool,
    env_choice,
    env_decimal,
    env_int,
    env_list,
    env_required,
    env_str,
)

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("COPYTRADE_VAR_DIR") or BASE_DIR / "var")

ENVIRONMENT = env_choice("COPYTRADE_ENV", ["development", "production"], "development")
PRODUCTION = ENVIRONMENT == "production"
DEBUG = env_bool("DEBUG", default=not PRODUCTION)

# --- Secrets -------------------------------------------------------------------------------
# SECRET_KEY signs sessions; CREDENTIAL_KEYS (comma-separated Fernet keys, newest first)
# encrypt broker credentials at rest. Development generates both into var/ once.
if PRODUCTION:
    SECRET_KEY = env_required("SECRET_KEY", "production never uses a generated key")
    _credential_keys = env_required(
        "CREDENTIAL_KEYS", "broker credentials are encrypted with these Fernet keys"
    )
    CREDENTIAL_KEYS = [k.strip() for k in _credential_keys.split(",") if k.strip()]
else:
    _dev = devsecrets.load_or_create(VAR_DIR / "dev-secrets.json")
    SECRET_KEY = env_str("SECRET_KEY") or _dev["SECRET_KEY"]
    CREDENTIAL_KEYS = env_list("CREDENTIAL_KEYS", _dev["CREDENTIAL_KEYS"])
if not CREDENTIAL_KEYS:
    raise ImproperlyConfigured("CREDENTIAL_KEYS must hold at least one Fernet key")

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", [] if PRODUCTION else ["127.0.0.1", "localhost"])
if PRODUCTION and not ALLOWED_HOSTS:
    raise ImproperlyConfigured("ALLOWED_HOSTS must be set in production")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

# --- Applications --------------------------------------------------------------------------
INSTALLED_APPS = [
    # The admin behind the product's login and second factor (accounts.admin_site).
    "accounts.apps.CopytradeAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "template_partials",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",  # one-time backup codes for a lost phone
    "axes",
    "csp",
    "accounts",
    "trading",
    "sandbox",
    "api",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # JSON errors under /api/ whatever produced them (404, 405, a crash)
    "api.middleware.ApiJsonErrorsMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "copytrade.middleware.CSPMiddleware",  # django-csp, skipping bodiless responses
    "django_htmx.middleware.HtmxMiddleware",
    "accounts.middleware.HtmxLoginRedirectMiddleware",
    # django-axes must be last: it turns lockouts into a response.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "copytrade.urls"
WSGI_APPLICATION = "copytrade.wsgi.application"
ASGI_APPLICATION = "copytrade.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "copytrade.context_processors.product",
            ],
        },
    },
]

# --- Database ------------------------------------------------------------------------------
# SQLite by default (WAL, IMMEDIATE transactions, a busy timeout); PostgreSQL via DATABASE_URL.
_sqlite_path = VAR_DIR / "copytrade.sqlite3"
DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL") or f"sqlite:///{_sqlite_path}",
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60, minimum=0),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Persistent connections (DATABASE_CONN_MAX_AGE) for SQLite too: opening one costs about
    # 1.6 ms of CPU here (functions, PRAGMAs), more than a board refresh (docs/BENCHMARKS.md).
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": env_int("SQLITE_BUSY_TIMEOUT_SECONDS", 20, minimum=1),
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # Tests use a file (not :memory:) so a second process (a copier) can share it.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test-copytrade.sqlite3")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Authentication ------------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "accounts:login"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# Lockout after repeated failed logins (django-axes): per username and address.
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = env_int("LOGIN_COOLOFF_MINUTES", 15, minimum=1) / 60  # hours
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "accounts.views.lockout_response"
AXES_IPWARE_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0, minimum=0) or None
AXES_SENSITIVE_PARAMETERS = [
    "password",
    "api_key",
    "api_secret",
    "app_code",
    "otp_token",
    "token",
    "old_password",
    "new_password1",
    "new_password2",
]

OTP_TOTP_ISSUER = env_str("OTP_ISSUER") or "copytrade"

SESSION_COOKIE_AGE = env_int("SESSION_HOURS", 12, minimum=1) * 3600
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_HTTPONLY = True

# --- Security headers ----------------------------------------------------------------------
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
        "base-uri": [SELF],
        "object-src": [NONE],
    }
}
if PRODUCTION:
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000, minimum=0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    if env_bool("BEHIND_TLS_PROXY", False):
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# --- Internationalisation ------------------------------------------------------------------
LANGUAGE_CODE = "en-in"
TIME_ZONE = "Asia/Kolkata"
USE_I18N = True
USE_TZ = True

# --- Static files (vendored; served by WhiteNoise) -----------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if PRODUCTION
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}
WHITENOISE_USE_FINDERS = not PRODUCTION
WHITENOISE_AUTOREFRESH = not PRODUCTION

# --- Email (notifications to masters) ------------------------------------------------------
EMAIL_BACKEND = env_str("EMAIL_BACKEND") or (
    "django.core.mail.backends.smtp.EmailBackend"
    if PRODUCTION
    else "django.core.mail.backends.console.EmailBackend"
)
EMAIL_HOST = env_str("EMAIL_HOST") or "localhost"
EMAIL_PORT = env_int("EMAIL_PORT", 25, minimum=1)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER") or ""
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD") or ""
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
# Every network call has a timeout: an SMTP server that hangs never stalls the copier's job.
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10, minimum=1)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL") or "copytrade@localhost"
SERVER_EMAIL = DEFAULT_FROM_EMAIL
# The copier emails each master a digest of its alerts (trading.engine.lifecycle.notify): at
# most one per NOTIFY_DIGEST_SECONDS, or per NOTIFY_URGENT_SECONDS while a copy's outcome is
# UNKNOWN; a lost master feed is reported once the loss lasted NOTIFY_FEED_LOST_SECONDS.
NOTIFY_DIGEST_SECONDS = env_int("NOTIFY_DIGEST_SECONDS", 300, minimum=1)
NOTIFY_URGENT_SECONDS = env_int("NOTIFY_URGENT_SECONDS", 60, minimum=1)
NOTIFY_FEED_LOST_SECONDS = env_int("NOTIFY_FEED_LOST_SECONDS", 120, minimum=0)

# --- AliceBlue -----------------------------------------------------------------------------
# ALICEBLUE_BROKER=sandbox (default) points every AliceBlue URL at the local sandbox broker;
# ALICEBLUE_BROKER=live points them at AliceBlue's real hosts. Each URL can be overridden.
ALICEBLUE_BROKER = env_choice("ALICEBLUE_BROKER", ["sandbox", "live"], "sandbox")
SANDBOX_HOST = env_str("SANDBOX_HOST") or "127.0.0.1"
SANDBOX_PORT = env_int("SANDBOX_PORT", 8100, minimum=1)
SANDBOX_URL = env_str("SANDBOX_URL") or f"http://{SANDBOX_HOST}:{SANDBOX_PORT}"
SANDBOX_STATE_PATH = Path(env_str("SANDBOX_STATE_PATH") or VAR_DIR / "sandbox.sqlite3")
SANDBOX_ROUND_THE_CLOCK = env_bool("SANDBOX_ROUND_THE_CLOCK", False)

if ALICEBLUE_BROKER == "sandbox":
    _ws_base = SANDBOX_URL.replace("http://", "ws://").replace("https://", "wss://")
    _defaults = {
        "OPEN_API": SANDBOX_URL,
        "ANT_API": SANDBOX_URL,
        "LOGIN": SANDBOX_URL + "/",
        "CONTRACT": SANDBOX_URL + "/restpy/static/contract_master",
        "ORDER_WS": _ws_base + "/open-api/order-notify/websocket",
        "ANT_ORDER_WS": _ws_base + "/order-notify/websocket",
    }
else:
    _defaults = {
        "OPEN_API": "https://a3.aliceblueonline.com",
        "ANT_API": "https://ant.aliceblueonline.com",
        "LOGIN": "https://ant.aliceblueonline.com/",
        "CONTRACT": "https://v2api.aliceblueonline.com/restpy/static/contract_master",
        "ORDER_WS": "wss://a3.aliceblueonline.com/open-api/order-notify/websocket",
        "ANT_ORDER_WS": "wss://ant.aliceblueonline.com/order-notify/websocket",
    }
ALICEBLUE_OPEN_API_URL = env_str("ALICEBLUE_OPEN_API_URL") or _defaults["OPEN_API"]
ALICEBLUE_ANT_API_URL = env_str("ALICEBLUE_ANT_API_URL") or _defaults["ANT_API"]
ALICEBLUE_LOGIN_URL = env_str("ALICEBLUE_LOGIN_URL") or _defaults["LOGIN"]
ALICEBLUE_CONTRACT_URL = env_str("ALICEBLUE_CONTRACT_URL") or _defaults["CONTRACT"]
ALICEBLUE_ORDER_WS_URL = env_str("ALICEBLUE_ORDER_WS_URL") or _defaults["ORDER_WS"]
ALICEBLUE_ANT_ORDER_WS_URL = env_str("ALICEBLUE_ANT_ORDER_WS_URL") or _defaults["ANT_ORDER_WS"]
# The deployment's vendor app (OAuth "Open API" login). In sandbox mode these default to the
# sandbox's own vendor app (see `manage.py sandbox_account show`).
ALICEBLUE_APP_CODE = env_str("ALICEBLUE_APP_CODE") or ""
ALICEBLUE_API_SECRET = env_str("ALICEBLUE_API_SECRET") or ""
# Default: this machine's web process (`make run` on WEB_PORT), so a development run on another
# port still gets the broker's sign-in answer.
ALICEBLUE_REDIRECT_URL = (
    env_str("ALICEBLUE_REDIRECT_URL")
    or f"http://127.0.0.1:{env_int('WEB_PORT', 8000, minimum=1)}/broker/callback/"
)
ALICEBLUE_CONNECT_TIMEOUT = env_int("ALICEBLUE_CONNECT_TIMEOUT_MS", 3000, minimum=100) / 1000
ALICEBLUE_READ_TIMEOUT = env_int("ALICEBLUE_READ_TIMEOUT_MS", 7000, minimum=100) / 1000
# Non-order requests per account per 15 minutes (AliceBlue: 1,800), shared by every process.
ALICEBLUE_REQUEST_BUDGET = env_int("ALICEBLUE_REQUEST_BUDGET", 1800, minimum=1)
# UNCONFIRMED protocol details (PROTOCOL.md): how MCX quantity is counted on the wire, and the
# Open API product name for carry-forward (NRML) orders.
ALICEBLUE_MCX_QUANTITY = env_choice("ALICEBLUE_MCX_QUANTITY", ["lots", "units"], "lots")
ALICEBLUE_G3_CARRY_FORWARD_PRODUCT = env_choice(
    "ALICEBLUE_G3_CARRY_FORWARD_PRODUCT", ["normal", "nrml"], "normal"
).upper()

# --- Copier --------------------------------------------------------------------------------
COPIER_STALENESS_SECONDS = env_int("COPIER_STALENESS_SECONDS", 30, minimum=1)
COPIER_ORDERS_PER_SECOND = env_int("COPIER_ORDERS_PER_SECOND", 8, minimum=1)
COPIER_HEARTBEAT_STALE_SECONDS = env_int("COPIER_HEARTBEAT_STALE_SECONDS", 30, minimum=5)
# Master order-book poll: fast while the order push is down/silent, slow while it is healthy
# (both bounded by the account's request budget); an ambiguous send is looked up by tag over
# this long before it becomes UNKNOWN; follower P&L (max daily loss) refresh (0 = off).
COPIER_POLL_FAST_SECONDS = env_int("COPIER_POLL_FAST_MS", 1000, minimum=50) / 1000
COPIER_POLL_SLOW_SECONDS = env_int("COPIER_POLL_SLOW_MS", 15000, minimum=50) / 1000
COPIER_AMBIGUOUS_LOOKUP_SECONDS = env_int("COPIER_AMBIGUOUS_LOOKUP_MS", 10000, minimum=100) / 1000
COPIER_PNL_REFRESH_SECONDS = env_int("COPIER_PNL_REFRESH_SECONDS", 60, minimum=0)
COPIER_HEARTBEAT_SECONDS = env_int("COPIER_HEARTBEAT_SECONDS", 5, minimum=1)
# Reconciliation: how often each follower's copied positions are compared with the master's.
COPIER_RECONCILE_SECONDS = env_int("COPIER_RECONCILE_SECONDS", 60, minimum=5)
# The copier loads each exchange's contract master once a day by itself.
COPIER_LOAD_CONTRACTS = env_bool("COPIER_LOAD_CONTRACTS", True)
# Treat every exchange as open all day, every day (the sandbox and tests; never in production
# trading). copytrade.lib.calendar.round_the_clock_from_settings() reads it.
TRADING_ROUND_THE_CLOCK = env_bool("TRADING_ROUND_THE_CLOCK", False)
# Readiness: the copier checks every master's followers once per trading day at this IST time
# (HH:MM, before market open); a follower with at most this much available cash (INR) is
# listed as short of funds.
try:
    READINESS_AT = _time.fromisoformat(env_str("READINESS_AT") or "08:45")
except ValueError as exc:
    raise ImproperlyConfigured("READINESS_AT must be an IST time as HH:MM, e.g. 08:45") from exc
READINESS_MIN_FUNDS = env_decimal("READINESS_MIN_FUNDS", Decimal("0"))

# --- Logging: structured lines, secrets masked -----------------------------------------------
LOG_LEVEL = env_str("LOG_LEVEL") or "INFO"
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"mask_secrets": {"()": "copytrade.lib.logging.SecretMaskingFilter"}},
    "formatters": {
        "structured": {
            "()": "copytrade.lib.logging.StructuredFormatter",
        }
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "structured",
            "filters": ["mask_secrets"],
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        "axes": {"level": "WARNING"},
    },
}
