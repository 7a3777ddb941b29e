"""Root URLs: the API under /api/v1/, probes, metrics, schema and docs, the admin."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from gateway import probes
from gateway.metrics import metrics_view

urlpatterns = [
    path("api/v1/", include("gateway.urls")),
    path("api/schema", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("healthz", probes.healthz, name="healthz"),
    path("readyz", probes.readyz, name="readyz"),
    path("metrics", metrics_view, name="prometheus-django-metrics"),
    path("admin/", admin.site.urls),
]

handler404 = "gateway.exception_handlers.api_not_found"
handler500 = "gateway.exception_handlers.api_server_error"
