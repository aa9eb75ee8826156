from django.contrib.auth import get_user_model
from django.test import TestCase
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from todos.models import Todo


class TodoAPITests(TestCase):
    def setUp(self):
        self.api = APIClient()
        self.alice = get_user_model().objects.create_user("alice", password="secret-pass-1")

    def test_anyone_can_list_and_read(self):
        todo = Todo.objects.create(title="milk", owner=self.alice)
        listing = self.api.get("/api/todos/")
        self.assertEqual(listing.status_code, 200)
        self.assertEqual([item["title"] for item in listing.json()], ["milk"])
        detail = self.api.get(f"/api/todos/{todo.pk}/")
        self.assertEqual(detail.json()["owner"], "alice")

    def test_anonymous_cannot_write(self):
        with self.assertLogs("django.request", "WARNING"):  # "Forbidden", expected here
            response = self.api.post("/api/todos/", {"title": "milk"}, format="json")
        self.assertEqual(response.status_code, 403)
        self.assertFalse(Todo.objects.exists())

    def test_create_sets_owner_from_the_request(self):
        self.api.force_authenticate(self.alice)
        response = self.api.post("/api/todos/", {"title": "milk", "owner": "bob"}, format="json")
        self.assertEqual(response.status_code, 201, response.content)
        self.assertEqual(Todo.objects.get().owner, self.alice)

    def test_token_authentication(self):
        token = Token.objects.create(user=self.alice)
        self.api.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
        response = self.api.post("/api/todos/", {"title": "milk"}, format="json")
        self.assertEqual(response.status_code, 201, response.content)

    def test_obtain_token_with_password(self):
        response = self.api.post(
            "/api/token/", {"username": "alice", "password": "secret-pass-1"}, format="json"
        )
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response.json()["token"], Token.objects.get(user=self.alice).key)

    def test_search_filter(self):
        Todo.objects.create(title="buy milk")
        Todo.objects.create(title="walk dog")
        response = self.api.get("/api/todos/", {"search": "milk"})
        self.assertEqual([item["title"] for item in response.json()], ["buy milk"])

    def test_title_is_validated(self):
        self.api.force_authenticate(self.alice)
        with self.assertLogs("django.request", "WARNING"):  # "Bad Request", expected here
            response = self.api.post("/api/todos/", {"title": "x" * 201}, format="json")
        self.assertEqual(response.status_code, 400)
