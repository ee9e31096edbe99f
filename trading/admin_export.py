"""CSV export from the admin: an "Export CSV" button on a changelist, a date-range form, and a
streamed download (`StreamingHttpResponse` over keyset batches: constant memory, and bytes
flow from the first batch, so a five-year export is a long download, not a long wait)."""

from __future__ import annotations

from datetime import date
from typing import Any

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.template.response import TemplateResponse
from django.urls import URLPattern, path

from accounts.models import User
from trading import exports
from trading.audit import record_audit
from trading.selectors import trading_day

RANGE_REVERSED = "The last day is before the first."
EXPORT_CHANGE_LIST = "admin/trading/change_list_export.html"


class ExportForm(forms.Form):
    start = forms.DateField(label="First day (IST)", widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(label="Last day (IST)", widget=forms.DateInput(attrs={"type": "date"}))

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        start, end = data.get("start"), data.get("end")
        if start and end and end < start:
            self.add_error("end", RANGE_REVERSED)
        return data


class CsvExportMixin:
    """For a ModelAdmin with `export = exports.<Export>`: adds `<changelist>/export/`; its
    changelist shows the button with `change_list_template = EXPORT_CHANGE_LIST`."""

    export: exports.Export

    def get_urls(self) -> list[URLPattern]:
        model_admin: admin.ModelAdmin[Any] = self  # type: ignore[assignment]
        meta = model_admin.model._meta
        name = f"{meta.app_label}_{meta.model_name}_export"
        view = model_admin.admin_site.admin_view(self.export_view)
        return [path("export/", view, name=name), *super().get_urls()]  # type: ignore[misc]

    def export_view(self, request: HttpRequest) -> HttpResponseBase:
        model_admin: admin.ModelAdmin[Any] = self  # type: ignore[assignment]
        if not model_admin.has_view_permission(request):
            raise PermissionDenied
        today = trading_day()
        if "start" in request.GET:
            form = ExportForm(request.GET)
            if form.is_valid():
                return self._stream(request, form.cleaned_data["start"], form.cleaned_data["end"])
        else:
            form = ExportForm(initial={"start": today.replace(day=1), "end": today})
        context = {
            **model_admin.admin_site.each_context(request),
            "title": f"Export {model_admin.model._meta.verbose_name_plural} as CSV",
            "opts": model_admin.model._meta,
            "form": form,
        }
        return TemplateResponse(request, "admin/trading/export.html", context)

    def _stream(self, request: HttpRequest, start: date, end: date) -> StreamingHttpResponse:
        user = request.user
        record_audit(
            actor=user if isinstance(user, User) else None,
            action=f"export.{self.export.name}",
            after={"from": start.isoformat(), "to": end.isoformat()},
            request=request,
        )
        response = StreamingHttpResponse(
            (
                chunk.encode("utf-8")
                for chunk in exports.csv_chunks(self.export.header, self.export.rows(start, end))
            ),
            content_type="text/csv; charset=utf-8",
        )
        response["Content-Disposition"] = (
            f'attachment; filename="{exports.filename(self.export, start, end)}"'
        )
        response["Cache-Control"] = "no-store"
        return response
