from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("rest_live", "0002_capture"),
    ]

    operations = [
        migrations.CreateModel(
            name="LogState",
            fields=[
                (
                    "id",
                    models.PositiveSmallIntegerField(default=1, primary_key=True, serialize=False),
                ),
                ("token", models.CharField(max_length=32)),
                ("floor", models.BigIntegerField(default=0)),
            ],
        ),
    ]
