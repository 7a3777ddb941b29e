"""Legacy DRF authtoken keys (plaintext, the table's primary key) become hashed API keys.

The same key keeps working for its client, and the plaintext rows are deleted. Raw SQL:
`rest_framework.authtoken` is no longer an installed app, its table may or may not exist.
"""

import hashlib

from django.db import migrations
from django.utils import timezone

LEGACY_TABLE = "authtoken_token"


def hash_legacy_tokens(apps, schema_editor):
    connection = schema_editor.connection
    if LEGACY_TABLE not in connection.introspection.table_names():
        return
    api_key = apps.get_model("gateway", "ApiKey")
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT key, user_id, created FROM {LEGACY_TABLE}")
        rows = cursor.fetchall()
    for key, user_id, created in rows:
        hashed = hashlib.sha256(key.encode("utf-8")).hexdigest()
        api_key.objects.get_or_create(
            hashed_key=hashed,
            defaults={
                "owner_id": user_id,
                "name": "migrated token",
                "prefix": key[:12],
                "created_at": created or timezone.now(),
            },
        )
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {LEGACY_TABLE}")


class Migration(migrations.Migration):
    dependencies = [("gateway", "0004_api_keys_quotas")]

    operations = [migrations.RunPython(hash_legacy_tokens, migrations.RunPython.noop, elidable=True)]
