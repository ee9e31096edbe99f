from django.urls import path

from trading import views, views_broker, views_lifecycle, views_manual

app_name = "trading"

urlpatterns = [
    path("master/", views.master_dashboard, name="master_dashboard"),
    path("master/kill-switch/", views.master_kill_switch, name="master_kill_switch"),
    path(
        "master/followers/<int:pk>/pause/",
        views.master_follower_pause,
        name="master_follower_pause",
    ),
    path(
        "master/followers/<int:pk>/resume/",
        views.master_follower_resume,
        name="master_follower_resume",
    ),
    path("master/sandbox-account/", views.master_sandbox_account, name="master_sandbox_account"),
    path("master/manual-copy/", views.master_manual_copy, name="master_manual_copy"),
    path(
        "master/missed-exits/send/",
        views_lifecycle.master_exit_proposals_send,
        name="master_exit_proposals_send",
    ),
    path(
        "master/missed-exits/dismiss/",
        views_lifecycle.master_exit_proposals_dismiss,
        name="master_exit_proposals_dismiss",
    ),
    path(
        "master/reconcile-policy/",
        views_lifecycle.master_reconcile_policy,
        name="master_reconcile_policy",
    ),
    path(
        "master/readiness/check/",
        views_lifecycle.master_readiness_check,
        name="master_readiness_check",
    ),
    path("board/", views.follower_board, name="follower_board"),
    path("manual/", views_manual.manual_copy, name="manual_copy"),
    # AliceBlue sessions (connect flows); the callback path is ALICEBLUE_REDIRECT_URL.
    path("broker/callback/", views_broker.broker_callback, name="broker_callback"),
    path("broker/<int:account_id>/", views_broker.broker_session, name="broker_session"),
    path("broker/<int:account_id>/connect/", views_broker.broker_connect, name="broker_connect"),
    path(
        "broker/<int:account_id>/disconnect/",
        views_broker.broker_disconnect,
        name="broker_disconnect",
    ),
]
