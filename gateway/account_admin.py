"""Admin for API keys and per-user quotas: create shows the key once; revoke is an action.

Registered from `gateway.admin`. Staff need the gateway permissions (create_api_token
--staff grants them); superuser is a separate flag.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.db.models import QuerySet
from django.http import HttpRequest

from .account_models import ApiKey, UserQuota
from .apikeys import api_key_create, api_key_revoke


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ["prefix", "name", "owner", "created_at", "last_used_at", "expires_at", "revoked_at", "usable"]
    list_filter = [("revoked_at", admin.EmptyFieldListFilter), ("expires_at", admin.EmptyFieldListFilter)]
    search_fields = ["name", "prefix", "owner__username"]
    list_select_related = ["owner"]
    raw_id_fields = ["owner"]  # staff without user permissions can still type the id
    actions = ["revoke_keys"]

    def get_fields(self, request: HttpRequest, obj: ApiKey | None = None) -> list[str]:
        if obj is None:
            return ["owner", "name", "expires_at"]  # the key itself is generated
        return ["owner", "name", "prefix", "created_at", "last_used_at", "expires_at", "revoked_at"]

    def get_readonly_fields(self, request: HttpRequest, obj: ApiKey | None = None) -> list[str]:
        if obj is None:
            return []
        # A key's owner and secret never change; revoke it and create another instead.
        return ["owner", "prefix", "created_at", "last_used_at", "revoked_at"]

    def save_model(self, request: HttpRequest, obj: ApiKey, form: Any, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        key, raw_key = api_key_create(owner=obj.owner, name=obj.name, expires_at=obj.expires_at)
        obj.pk = key.pk  # the admin's "added" message and redirect use the new row
        self.message_user(
            request,
            f"The new API key is {raw_key} — copy it now: it is stored only as a hash and cannot be shown again.",
            messages.WARNING,
        )

    @admin.display(boolean=True, description="usable")
    def usable(self, key: ApiKey) -> bool:
        return key.is_usable()

    @admin.action(description="Revoke selected API keys", permissions=["change"])
    def revoke_keys(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        for key in queryset:
            api_key_revoke(key=key)
        self.message_user(request, f"Revoked {queryset.count()} key(s).", messages.SUCCESS)


@admin.register(UserQuota)
class UserQuotaAdmin(admin.ModelAdmin):
    list_display = ["user", "max_active_jobs", "max_chars_per_day"]
    search_fields = ["user__username"]
    raw_id_fields = ["user"]


class UserQuotaInline(admin.StackedInline):
    model = UserQuota
    can_delete = True
    extra = 0
    max_num = 1


# The stock user admin, with the user's quota on the same page.
_user_model = get_user_model()
if admin.site.is_registered(_user_model):
    _base_admin = type(admin.site._registry[_user_model])
    admin.site.unregister(_user_model)
else:
    _base_admin = UserAdmin


@admin.register(_user_model)
class UserWithQuotaAdmin(_base_admin):  # type: ignore[misc,valid-type]
    inlines = [*getattr(_base_admin, "inlines", []), UserQuotaInline]
