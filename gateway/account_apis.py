"""GET /api/v1/me: who the key belongs to, their limits and how much of them is used."""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from .quotas import quota_limits, quota_usage


class MeOutputSerializer(serializers.Serializer):
    class LimitsSerializer(serializers.Serializer):
        max_active_jobs = serializers.IntegerField(min_value=0, help_text="jobs queued or running at once")
        max_chars_per_day = serializers.IntegerField(min_value=0, help_text="characters submitted per UTC day")
        rates = serializers.DictField(
            child=serializers.CharField(allow_null=True),
            help_text="request rates per scope (submit, validate, read) as '<count>/<period>'; null: unlimited",
        )

    class UsageSerializer(serializers.Serializer):
        active_jobs = serializers.IntegerField(min_value=0)
        chars_today = serializers.IntegerField(min_value=0)
        day_resets_at = serializers.DateTimeField(help_text="when chars_today starts again from 0 (00:00 UTC)")

    username = serializers.CharField()
    is_staff = serializers.BooleanField()
    api_key = serializers.CharField(allow_null=True, help_text="prefix of the key this request used")
    limits = LimitsSerializer()
    usage = UsageSerializer()


class MeApi(APIView):
    @extend_schema(operation_id="me", responses=MeOutputSerializer)
    def get(self, request: Request) -> Response:
        limits = quota_limits(user=request.user)
        usage = quota_usage(user=request.user)
        data = {
            "username": request.user.get_username(),
            "is_staff": request.user.is_staff,
            "api_key": getattr(request.auth, "prefix", None),
            "limits": {
                "max_active_jobs": limits.max_active_jobs,
                "max_chars_per_day": limits.max_chars_per_day,
                "rates": {scope: rate or None for scope, rate in settings.TTS_THROTTLE_RATES.items()},
            },
            "usage": {
                "active_jobs": usage.active_jobs,
                "chars_today": usage.chars_today,
                "day_resets_at": usage.day_resets_at,
            },
        }
        return Response(MeOutputSerializer(data).data)
