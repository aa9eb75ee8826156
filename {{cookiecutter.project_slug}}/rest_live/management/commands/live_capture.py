"""`manage.py live_capture`: the change capture of each table a live view reads.

python manage.py live_capture            # each table, why it is captured, and its state
python manage.py live_capture install    # what `migrate` does at its end
python manage.py live_capture remove     # drop every capture trigger (`migrate` restores them)
"""

from django.core.management.base import BaseCommand, CommandError
from django.db import connections

from rest_live.capture import install


class Command(BaseCommand):
    help = "List, install or remove the triggers that capture changes for live views."

    def add_arguments(self, parser):
        parser.add_argument(
            "action", nargs="?", choices=["list", "install", "remove"], default="list"
        )
        parser.add_argument("--database", default=None, help="Default: the change log's database.")

    def handle(self, *args, action, database, **options):
        using = database or install.log_database()
        if using not in connections:
            raise CommandError(
                f"No database {using!r} in DATABASES; name one of: {', '.join(connections)}."
            )
        if action == "install":
            changed = install.install(using)
            self.stdout.write(f"Installed or updated: {', '.join(changed) or 'nothing to do'}")
        elif action == "remove":
            removed = install.remove(using)
            self.stdout.write(f"Removed the capture of: {', '.join(removed) or 'nothing'}")
        if action != "remove":
            self._list(using)

    def _list(self, using):
        try:
            found = install.status(using)
        except NotImplementedError as error:
            raise CommandError(f"The change capture does not support {error} databases.") from None
        for item in found:
            table = item.table
            watched = None if table.columns is None else table.columns | table.refs
            columns = "any column" if watched is None else ", ".join(sorted(watched))
            self.stdout.write(
                f"{item.table.label} (table {item.table.name}): {item.state}; updates of {columns}"
            )
            for sentence in item.why:
                self.stdout.write(f"    {sentence}")
        for name in install.leftovers(using):
            self.stdout.write(
                f"(table {name}): capture of a table no live view reads; `install` removes it"
            )
