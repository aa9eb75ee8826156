import secrets

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.management.base import BaseCommand

from todos.models import Todo

DEMO_TITLES = ["Buy milk", "Write the release notes", "Water the plants", "Call the plumber"]


class Command(BaseCommand):
    help = (
        "Create a demo user (printing its password) who may also edit todos in the admin, and a "
        "few todos, for trying the live page."
    )

    def add_arguments(self, parser):
        parser.add_argument("--username", default="demo")

    def handle(self, *args, username, **options):
        password = secrets.token_urlsafe(9)
        user, _ = get_user_model().objects.get_or_create(username=username)
        user.set_password(password)
        # Staff with the todo permissions only, not a superuser: enough to watch an admin edit
        # reach the live page, and nothing else in the admin.
        user.is_staff = True
        user.save()
        user.user_permissions.add(
            *Permission.objects.filter(content_type__app_label="todos", content_type__model="todo")
        )
        if not Todo.objects.exists():
            Todo.objects.bulk_create(Todo(title=title, owner=user) for title in DEMO_TITLES)
        self.stdout.write(
            self.style.SUCCESS(f"Demo user: {username}  password: {password}")
            + "\nSign in at /api-auth/login/ for the live page, or at /admin/ to edit todos there "
            "(the password changes each time this command runs)."
        )
