from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib import admin
from django.http import HttpRequest
from django.utils import timezone

from trading import exports
from trading.admin_export import EXPORT_CHANGE_LIST, CsvExportMixin
from trading.models import (
    AuditEvent,
    CopierHeartbeat,
    CopyTrade,
    CopyTradeTransition,
    ExitProposal,
    MasterOrder,
    MasterOrderEvent,
    PositionDrift,
    PositionLedger,
)


@admin.register(AuditEvent)
class AuditEventAdmin(CsvExportMixin, admin.ModelAdmin):
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
    export = exports.AUDIT
    change_list_template = EXPORT_CHANGE_LIST

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


# --- Trading records: read-only, searchable, filterable, exportable -----------------------------
# Written by the copier and by services that record every change (transitions, audit rows);
# editing them by hand would bypass that, so staff read them here and export them as CSV.
class ReadOnlyAdmin(admin.ModelAdmin):
    actions = None
    show_full_result_count = False  # no second COUNT(*) over millions of rows
    list_per_page = 50

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class CopyTradeTransitionInline(ReadOnlyInline):
    model = CopyTradeTransition
    fields = ("at", "from_status", "to_status", "note")
    readonly_fields = fields
    ordering = ("at", "id")


@admin.register(CopyTrade)
class CopyTradeAdmin(CsvExportMixin, ReadOnlyAdmin):
    export = exports.COPY_TRADES
    change_list_template = EXPORT_CHANGE_LIST
    list_display = (
        "id",
        "decided_at",
        "master",
        "follower",
        "trading_symbol",
        "exchange",
        "side",
        "master_quantity",
        "quantity",
        "status",
        "reason_code",
        "manual",
    )
    list_filter = (
        "status",
        "master",
        ("follower", admin.RelatedOnlyFieldListFilter),
        "exchange",
        "side",
        "intent",
        "manual",
        ("decided_at", admin.DateFieldListFilter),
    )
    search_fields = (
        "trading_symbol",
        "tag",
        "broker_order_id",
        "follower__display_name",
        "follower__user__username",
        "master__user__username",
        "reason",
    )
    list_select_related = ("master__user", "follower")
    ordering = ("-id",)
    inlines = [CopyTradeTransitionInline]
    raw_id_fields = ("event", "linked")


@admin.register(CopyTradeTransition)
class CopyTradeTransitionAdmin(ReadOnlyAdmin):
    list_display = ("at", "copy_trade", "from_status", "to_status", "note")
    list_filter = (
        "to_status",
        "from_status",
        ("copy_trade__master", admin.RelatedOnlyFieldListFilter),
        ("at", admin.DateFieldListFilter),
    )
    search_fields = (
        "copy_trade__tag",
        "copy_trade__trading_symbol",
        "copy_trade__follower__user__username",
        "copy_trade__follower__display_name",
        "note",
    )
    list_select_related = ("copy_trade",)
    ordering = ("-id",)
    raw_id_fields = ("copy_trade",)


class MasterOrderEventInline(ReadOnlyInline):
    model = MasterOrderEvent
    fields = (
        "received_at",
        "kind",
        "source",
        "broker_time",
        "quantity",
        "filled_quantity",
        "price",
        "broker_status",
    )
    readonly_fields = fields
    ordering = ("received_at", "id")


@admin.register(MasterOrder)
class MasterOrderAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "first_seen_at",
        "master",
        "broker_order_id",
        "trading_symbol",
        "exchange",
        "side",
        "quantity",
        "filled_quantity",
        "order_type",
        "broker_status",
        "manual",
    )
    list_filter = (
        "master",
        "manual",
        "side",
        "exchange",
        "order_type",
        "product",
        ("first_seen_at", admin.DateFieldListFilter),
    )
    search_fields = ("broker_order_id", "trading_symbol", "tag", "master__user__username")
    list_select_related = ("master__user",)
    ordering = ("-id",)
    inlines = [MasterOrderEventInline]


@admin.register(MasterOrderEvent)
class MasterOrderEventAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "received_at",
        "master_order",
        "kind",
        "source",
        "broker_time",
        "quantity",
        "filled_quantity",
        "broker_status",
    )
    list_filter = (
        "kind",
        "source",
        ("master_order__master", admin.RelatedOnlyFieldListFilter),
        ("received_at", admin.DateFieldListFilter),
    )
    search_fields = (
        "master_order__broker_order_id",
        "master_order__trading_symbol",
        "broker_status",
    )
    list_select_related = ("master_order",)
    ordering = ("-id",)
    raw_id_fields = ("master_order",)


@admin.register(PositionLedger)
class PositionLedgerAdmin(ReadOnlyAdmin):
    list_display = (
        "follower",
        "master",
        "exchange",
        "trading_symbol",
        "product",
        "net_quantity",
        "buy_quantity",
        "sell_quantity",
        "realised_pnl",
        "detached",
        "updated_at",
    )
    list_filter = (
        "master",
        ("follower", admin.RelatedOnlyFieldListFilter),
        "exchange",
        "product",
        "detached",
    )
    search_fields = ("trading_symbol", "follower__display_name", "follower__user__username")
    list_select_related = ("master__user", "follower")
    ordering = ("-updated_at",)


@admin.register(CopierHeartbeat)
class CopierHeartbeatAdmin(ReadOnlyAdmin):
    list_display = ("name", "pid", "started_at", "beat_at", "alive")
    ordering = ("name",)

    @admin.display(boolean=True, description="alive")
    def alive(self, obj: CopierHeartbeat) -> bool:
        stale = timedelta(seconds=settings.COPIER_HEARTBEAT_STALE_SECONDS)
        return timezone.now() - obj.beat_at <= stale


@admin.register(ExitProposal)
class ExitProposalAdmin(ReadOnlyAdmin):
    """Missed exits proposed after a feed loss, and what the master decided."""

    list_display = ("created_at", "master", "follower", "late_copy", "status", "quantity_sent")
    list_filter = ("status", "master")
    search_fields = ("follower__display_name", "late_copy__trading_symbol", "late_copy__tag")
    list_select_related = ("master__user", "follower", "late_copy")
    raw_id_fields = ("late_copy", "exits")
    ordering = ("-id",)


@admin.register(PositionDrift)
class PositionDriftAdmin(ReadOnlyAdmin):
    """Reconciliation: copied positions that differ from the master's, scaled."""

    list_display = (
        "first_seen_at",
        "master",
        "follower",
        "trading_symbol",
        "product",
        "master_net",
        "expected",
        "ledger_net",
        "broker_net",
        "closed_by_hand",
        "status",
        "resolved_at",
    )
    list_filter = ("status", "master", "exchange", "product")
    search_fields = ("trading_symbol", "follower__display_name", "follower__user__username")
    list_select_related = ("master__user", "follower")
    raw_id_fields = ("close_event", "alert")
    ordering = ("-id",)
