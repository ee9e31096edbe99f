from django.contrib.auth import views as auth_views
from django.urls import path

from accounts import views

app_name = "accounts"

urlpatterns = [
    # Login: password, then (masters and staff) the second factor.
    path("login/", views.login_view, name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("2fa/enrol/", views.otp_enrol, name="otp_enrol"),
    path("2fa/verify/", views.otp_verify, name="otp_verify"),
    path("2fa/backup-codes/", views.backup_codes, name="backup_codes"),
    path("password/", views.password_change, name="password_change"),
    # Masters: their followers, their kill switch, their own AliceBlue account.
    path("followers/", views.follower_list, name="follower_list"),
    path("followers/new/", views.follower_register, name="follower_register"),
    path("followers/<int:pk>/", views.follower_detail, name="follower_detail"),
    path("followers/<int:pk>/limits/", views.follower_limits, name="follower_limits"),
    path(
        "followers/<int:pk>/credentials/",
        views.follower_credentials,
        name="follower_credentials",
    ),
    path("followers/<int:pk>/pause/", views.follower_pause, name="follower_pause"),
    path("followers/<int:pk>/resume/", views.follower_resume, name="follower_resume"),
    path(
        "followers/<int:pk>/reset-password/",
        views.follower_reset_password,
        name="follower_reset_password",
    ),
    path("followers/<int:pk>/deactivate/", views.follower_deactivate, name="follower_deactivate"),
    path("kill-switch/", views.kill_switch, name="kill_switch"),
    path("broker/", views.broker_account, name="broker_account"),
    # Followers: their own account.
    path("me/", views.me, name="me"),
    path("me/pause/", views.me_pause, name="me_pause"),
    path("me/resume/", views.me_resume, name="me_resume"),
]
