"""Kalpi URLs: admin, health, API schema and docs, and each app's routes."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from ballots.public_urls import api_urlpatterns, page_urlpatterns
from config.health import healthz

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("api/v1/audit/", include("audit.urls")),
    path("api/v1/station/", include("ballots.urls")),
    path("api/v1/elections/", include(api_urlpatterns)),
    path("results/", include(page_urlpatterns)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
]

admin.site.site_header = "Kalpi administration"
admin.site.site_title = "Kalpi"
admin.site.index_title = "Roster, elections and audit"

handler404 = "config.errors.not_found"
