from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = []  # noqa: RUF012 - the form Django writes

    operations = [  # noqa: RUF012 - the form Django writes
        migrations.CreateModel(
            name="Note",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("text", models.CharField(max_length=200)),
                ("updated", models.DateTimeField(auto_now=True)),
            ],
            options={"ordering": ("id",)},
        ),
    ]
