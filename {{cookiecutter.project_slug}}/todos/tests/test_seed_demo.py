import re
from io import StringIO

from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import TestCase

from todos.models import Todo


def seed_demo(*args):
    """Run seed_demo; return the username and the password it printed."""
    out = StringIO()
    call_command("seed_demo", *args, stdout=out)
    match = re.search(r"Demo user: (\S+)\s+password: (\S+)", out.getvalue())
    return match.group(1), match.group(2)


class SeedDemoTests(TestCase):
    def test_creates_the_demo_user_and_todos(self):
        username, password = seed_demo()
        user = get_user_model().objects.get(username=username)
        self.assertTrue(user.check_password(password))
        self.assertEqual(Todo.objects.filter(owner=user).count(), 4)

    def test_the_demo_user_can_edit_todos_in_the_admin(self):
        username, password = seed_demo()
        self.assertTrue(self.client.login(username=username, password=password))
        todo = Todo.objects.first()

        self.assertEqual(self.client.get("/admin/todos/todo/").status_code, 200)
        response = self.client.post(
            f"/admin/todos/todo/{todo.pk}/change/",
            {"title": "Changed in the admin", "done": "on", "owner": todo.owner_id},
        )

        self.assertEqual(response.status_code, 302, response.content[:2000])
        todo.refresh_from_db()
        self.assertEqual((todo.title, todo.done), ("Changed in the admin", True))

    def test_the_demo_user_is_not_a_superuser(self):
        username, password = seed_demo()
        self.assertFalse(get_user_model().objects.get(username=username).is_superuser)
        self.client.login(username=username, password=password)
        with self.assertLogs("django.request", "WARNING"):  # the admin's PermissionDenied
            self.assertEqual(self.client.get("/admin/auth/user/").status_code, 403)

    def test_running_it_again_changes_the_password_and_adds_no_todos(self):
        first = seed_demo()
        second = seed_demo()
        self.assertNotEqual(first[1], second[1])
        self.assertTrue(self.client.login(username="demo", password=second[1]))
        self.assertEqual(Todo.objects.count(), 4)
