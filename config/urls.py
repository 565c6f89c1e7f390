from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from agents.login import LoginView
from config.health import healthz

admin.site.site_header = "Switchboard"
admin.site.site_title = "Switchboard"
admin.site.index_title = "Administration"

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("accounts/login/", LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("console/", include("agents.urls")),
    path("api/routing/", include("routing.urls")),
    path("", include("bots.urls")),
]
