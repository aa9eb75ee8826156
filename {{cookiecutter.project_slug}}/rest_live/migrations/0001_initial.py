from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = []

    operations = [
        migrations.CreateModel(
            name="Change",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("model", models.CharField(max_length=200)),
                ("pks", models.JSONField()),
                ("created", models.BooleanField(default=False)),
                ("recorded", models.DateTimeField(auto_now_add=True, db_index=True)),
            ],
            options={
                "ordering": ["id"],
            },
        ),
    ]
