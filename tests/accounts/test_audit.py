"""The audit trail is append-only: the product never changes or deletes a row, and the admin
shows it read-only."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from accounts import services
from tests.conftest import login
from trading.audit import mask_values, record_audit
from trading.models import AuditEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def event(master_x, follower_a) -> AuditEvent:
    services.pause_follower(follower=follower_a, actor=master_x.user)
    return AuditEvent.objects.get(action="follower.pause")


def test_audit_rows_cannot_be_changed_or_deleted_through_the_orm(event):
    event.action = "tampered"
    with pytest.raises(PermissionError):
        event.save()
    with pytest.raises(PermissionError):
        event.delete()
    with pytest.raises(PermissionError):
        AuditEvent.objects.filter(pk=event.pk).update(action="tampered")
    with pytest.raises(PermissionError):
        AuditEvent.objects.filter(pk=event.pk).delete()
    assert AuditEvent.objects.get(pk=event.pk).action == "follower.pause"


def test_admin_lists_and_shows_audit_rows_read_only(client: Client, staff, event):
    login(client, staff)
    listing = client.get(reverse("admin:trading_auditevent_changelist"))
    assert listing.status_code == 200
    assert "follower.pause" in listing.content.decode()
    detail = client.get(reverse("admin:trading_auditevent_change", args=[event.pk]))
    assert detail.status_code == 200
    html = detail.content.decode()
    assert 'name="_save"' not in html and "Delete" not in html


def test_admin_refuses_to_add_change_or_delete_audit_rows(client: Client, staff, event):
    login(client, staff)
    assert client.get(reverse("admin:trading_auditevent_add")).status_code == 403
    assert (
        client.post(reverse("admin:trading_auditevent_add"), {"action": "forged"}).status_code
        == 403
    )
    change = client.post(
        reverse("admin:trading_auditevent_change", args=[event.pk]), {"action": "tampered"}
    )
    assert change.status_code == 403
    delete_page = client.get(reverse("admin:trading_auditevent_delete", args=[event.pk]))
    assert delete_page.status_code == 403
    delete = client.post(
        reverse("admin:trading_auditevent_delete", args=[event.pk]), {"post": "yes"}
    )
    assert delete.status_code == 403
    bulk = client.post(
        reverse("admin:trading_auditevent_changelist"),
        {"action": "delete_selected", "_selected_action": [event.pk], "post": "yes"},
    )
    assert bulk.status_code in (200, 302)
    assert AuditEvent.objects.filter(pk=event.pk, action="follower.pause").exists()


def test_admin_shows_people_and_accounts_read_only_without_ciphertext(
    client: Client, staff, follower_a
):
    login(client, staff)
    account = follower_a.user.broker_account
    page = client.get(reverse("admin:accounts_brokeraccount_change", args=[account.pk]))
    assert page.status_code == 200
    html = page.content.decode()
    assert account.api_key_encrypted not in html
    assert account.api_key().reveal() not in html
    assert 'name="_save"' not in html
    assert (
        client.post(
            reverse("admin:accounts_follower_change", args=[follower_a.pk]), {"lot_multiplier": "9"}
        ).status_code
        == 403
    )


def test_record_audit_masks_secret_values_whatever_the_caller_passes(master_x):
    row = record_audit(
        actor=master_x.user,
        action="test",
        before={"api_key": "a-very-long-api-key-value-1234", "note": "plain"},
        after={"nested": {"password": "hunter2-hunter2"}, "tokens": ["abcdefghijkl9876"]},
    )
    assert row.before == {"api_key": "****1234", "note": "plain"}
    assert row.after == {"nested": {"password": "****ter2"}, "tokens": ["****9876"]}


def test_mask_values_keeps_already_masked_values_and_plain_statements():
    assert mask_values({"api_key": "****abcd", "api_secret": "not set", "password": "changed"}) == {
        "api_key": "****abcd",
        "api_secret": "not set",
        "password": "changed",
    }
    assert mask_values({"session_token": "short"}) == {"session_token": "****"}


def test_admin_does_not_expose_second_factor_secrets(client: Client, staff, master_x):
    from django_otp.plugins.otp_static.models import StaticDevice
    from django_otp.plugins.otp_totp.models import TOTPDevice

    login(client, staff)
    for model in (TOTPDevice, StaticDevice):
        opts = model._meta
        assert not admin_site_has(opts.app_label, opts.model_name)
    html = client.get(reverse("admin:index")).content.decode()
    assert "TOTP" not in html and "otp_static" not in html


def admin_site_has(app_label: str, model_name: str) -> bool:
    from django.contrib import admin

    return any(
        m._meta.app_label == app_label and m._meta.model_name == model_name
        for m in admin.site._registry
    )
