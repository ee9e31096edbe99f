from django.contrib import admin
from django.contrib.auth.admin import UserAdmin

from accounts.models import BrokerAccount, Follower, Master, User


@admin.register(User)
class CopytradeUserAdmin(UserAdmin):
    list_display = ("username", "role", "is_staff", "is_active", "last_login")
    list_filter = ("role", "is_staff", "is_active")
    fieldsets = (*UserAdmin.fieldsets, ("Role", {"fields": ("role",)}))  # type: ignore[misc]


@admin.register(Master)
class MasterAdmin(admin.ModelAdmin):
    list_display = ("user", "copy_mode", "reconcile_policy", "entries_paused", "created_at")


@admin.register(Follower)
class FollowerAdmin(admin.ModelAdmin):
    list_display = ("display_name", "master", "lot_multiplier", "is_paused", "is_active")
    list_filter = ("is_paused", "is_active", "master")
    search_fields = ("display_name", "user__username")


@admin.register(BrokerAccount)
class BrokerAccountAdmin(admin.ModelAdmin):
    list_display = ("client_id", "owner", "master", "login_method", "api_key_hint")
    # Encrypted columns are never shown, not even as ciphertext.
    exclude = ("api_key_encrypted", "app_code_encrypted", "api_secret_encrypted")
    readonly_fields = ("api_key_hint", "app_code_hint", "api_secret_hint", "credentials_wiped_at")
