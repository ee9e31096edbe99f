from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class AccountsConfig(AppConfig):
    default = True
    default_auto_field = "django.db.models.BigAutoField"
    name = "accounts"


class CopytradeAdminConfig(admin_apps.AdminConfig):
    """The admin site with the product's login and second factor (see accounts.admin_site)."""

    default = False
    default_site = "accounts.admin_site.CopytradeAdminSite"
