from django.urls import path

from trading import views

app_name = "trading"

urlpatterns = [
    path("master/", views.master_dashboard, name="master_dashboard"),
    path("board/", views.follower_board, name="follower_board"),
]
