"""Staff inspect people and accounts here, read-only: every change goes through the services
(pages, commands, API), which validate it and write the audit trail."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin
from django.http import HttpRequest
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import BrokerAccount, Follower, Master, User


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(User)
class CopytradeUserAdmin(ReadOnlyAdmin, UserAdmin):
    list_display = ("username", "role", "is_staff", "is_active", "last_login")
    list_filter = ("role", "is_staff", "is_active")
    fieldsets = (
        (None, {"fields": ("username", "role", "email")}),
        ("Status", {"fields": ("is_active", "is_staff", "is_superuser")}),
        ("Dates", {"fields": ("last_login", "date_joined")}),
    )


@admin.register(Master)
class MasterAdmin(ReadOnlyAdmin):
    list_display = ("user", "copy_mode", "reconcile_policy", "entries_paused", "created_at")
    list_select_related = ("user",)


@admin.register(Follower)
class FollowerAdmin(ReadOnlyAdmin):
    list_display = (
        "display_name",
        "user",
        "master",
        "lot_multiplier",
        "is_paused",
        "paused_by",
        "is_active",
    )
    list_filter = ("is_paused", "is_active", "master")
    list_select_related = ("user", "master__user")
    search_fields = ("display_name", "user__username")


@admin.register(BrokerAccount)
class BrokerAccountAdmin(ReadOnlyAdmin):
    list_display = ("client_id", "owner", "master", "login_method", "active", "api_key_shown")
    list_filter = ("login_method", "active")
    list_select_related = ("owner", "master__user")
    search_fields = ("client_id", "owner__username")
    # Encrypted columns are never shown, not even as ciphertext.
    fields = (
        "owner",
        "master",
        "client_id",
        "login_method",
        "active",
        "api_key_shown",
        "app_code_shown",
        "api_secret_shown",
        "credentials_wiped_at",
        "created_at",
        "updated_at",
    )
    readonly_fields = fields


# django-otp's own admin pages would let staff read a master's TOTP secret (its QR code) and
# backup codes, or remove them without an audit row. The audited way to reset a lost second
# factor is `manage.py reset_second_factor USERNAME`.
for _device_model in (TOTPDevice, StaticDevice):
    if admin.site.is_registered(_device_model):
        admin.site.unregister(_device_model)
