"""Segment PCM is stored out of line without compression on Postgres (STORAGE EXTERNAL).

Postgres tries pglz on every bytea value over ~2 kB: on a sentence of speech (about 120 kB of
16-bit PCM) the attempt cost its backend about 1 ms more per insert and read than storing it as
it is, and audio barely compresses. Segments live only until their job's WAV is assembled.
Other databases have no such setting: nothing to do there.
"""

from django.db import migrations

TABLE, COLUMN = "gateway_audiosegment", "pcm"


def _set_storage(storage: str):
    def apply(apps, schema_editor) -> None:
        if schema_editor.connection.vendor != "postgresql":
            return
        quote = schema_editor.quote_name
        schema_editor.execute(f"ALTER TABLE {quote(TABLE)} ALTER COLUMN {quote(COLUMN)} SET STORAGE {storage}")

    return apply


class Migration(migrations.Migration):
    dependencies = [("gateway", "0007_job_topic_queued_idx")]

    operations = [migrations.RunPython(_set_storage("EXTERNAL"), _set_storage("EXTENDED"), elidable=False)]
