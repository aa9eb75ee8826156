"""Django's `migrate`, which also brings rest_live's change capture up to date when it ends
(post_migrate, capture/install.py): its system checks do not report the capture it is about to
install as missing."""

from django.core.management.commands import migrate
from django.db import DEFAULT_DB_ALIAS

from rest_live.capture import install


class Command(migrate.Command):
    def execute(self, *args, **options):
        install.defer_check(options.get("database") or DEFAULT_DB_ALIAS)
        return super().execute(*args, **options)
