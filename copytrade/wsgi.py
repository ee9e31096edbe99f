import gc
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "copytrade.settings")

application = get_wsgi_application()


def _warm_and_freeze() -> None:
    """Load the URLconf (and so every view module) now, then move everything loaded so far
    out of the garbage collector's sight: the long-lived heap (Django, the apps, their
    libraries) is never collected, so full collections stay short under load."""
    from django.urls import get_resolver

    get_resolver().url_patterns  # noqa: B018  (imports the views)
    gc.collect()
    gc.freeze()


_warm_and_freeze()
