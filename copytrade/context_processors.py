from django.conf import settings
from django.http import HttpRequest


def product(request: HttpRequest) -> dict[str, object]:
    return {
        "BROKER_MODE": settings.ALICEBLUE_BROKER,
        "SANDBOX_URL": settings.SANDBOX_URL if settings.ALICEBLUE_BROKER == "sandbox" else "",
    }
