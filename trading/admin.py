from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from trading.models import AuditEvent


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """The audit trail, read-only: nobody adds, changes or deletes a row through the admin."""

    list_display = ("at", "actor_repr", "action", "target_type", "target_repr", "master")
    list_filter = ("action", "master")
    search_fields = ("actor_repr", "action", "target_repr", "target_id")
    date_hierarchy = "at"
    list_select_related = ("master__user",)
    readonly_fields = (
        "at",
        "actor",
        "actor_repr",
        "action",
        "target_type",
        "target_id",
        "target_repr",
        "master",
        "before",
        "after",
        "ip_address",
    )
    fields = readonly_fields
    actions = None

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
