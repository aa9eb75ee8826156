from django.db import migrations, models


def remove_capture(apps, schema_editor):
    """Unmigrating rest_live drops the change log: first the triggers that write to it."""
    from rest_live.capture import install

    install.remove(schema_editor.connection.alias)


class Migration(migrations.Migration):
    dependencies = [
        ("rest_live", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="change",
            name="refs",
            field=models.JSONField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="change",
            name="columns",
            field=models.JSONField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="change",
            name="txid",
            field=models.BigIntegerField(blank=True, null=True),
        ),
        migrations.RunPython(migrations.RunPython.noop, remove_capture),
    ]
