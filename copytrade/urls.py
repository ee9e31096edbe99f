from django.contrib import admin
from django.urls import include, path

from api.endpoints import api
from copytrade import views

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("accounts/", include("accounts.urls")),
    path("", include("trading.urls")),
    path("admin/", admin.site.urls),
    path("api/", api.urls),
]
