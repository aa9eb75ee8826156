import secrets

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.management.base import BaseCommand

from todos.models import Tag, Todo

DEMO_TODOS = {
    "Buy milk": ["home"],
    "Write the release notes": ["work"],
    "Water the plants": ["home"],
    "Call the plumber": [],
}


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
        # Staff with the todo and tag permissions only, not a superuser: enough to watch an admin
        # edit reach the live page, and nothing else in the admin.
        user.is_staff = True
        user.save()
        user.user_permissions.add(*Permission.objects.filter(content_type__app_label="todos"))
        if not Todo.objects.exists():
            for title, tag_names in DEMO_TODOS.items():
                todo = Todo.objects.create(title=title, owner=user)
                todo.tags.set(Tag.objects.get_or_create(name=name)[0] for name in tag_names)
        self.stdout.write(
            self.style.SUCCESS(f"Demo user: {username}  password: {password}")
            + "\nSign in at /api-auth/login/ for the live page, or at /admin/ to edit todos there "
            "(the password changes each time this command runs)."
        )
