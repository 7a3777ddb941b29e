"""Root URLs: the API under /api/v1/, probes, metrics, schema and docs, the admin."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from gateway import openai_api, probes
from gateway.metrics import metrics_view

urlpatterns = [
    path("api/v1/", include("gateway.urls")),
    # OpenAI-compatible speech API (clients set base_url to <gateway>/v1).
    path("v1/audio/speech", openai_api.speech_view, name="openai-speech"),
    path("v1/audio/voices", openai_api.voices_view, name="openai-voices"),
    path("v1/models", openai_api.models_view, name="openai-models"),
    path("api/schema", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("healthz", probes.healthz, name="healthz"),
    path("readyz", probes.readyz, name="readyz"),
    path("metrics", metrics_view, name="prometheus-django-metrics"),
    path("admin/", admin.site.urls),
]

handler404 = "gateway.exception_handlers.api_not_found"
handler500 = "gateway.exception_handlers.api_server_error"
