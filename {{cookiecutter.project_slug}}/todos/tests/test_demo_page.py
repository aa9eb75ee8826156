"""The demo page at / (templates/index.html, static/todos/): what each visitor is offered."""

from django.contrib.auth import get_user_model
from django.contrib.staticfiles import finders
from django.test import TestCase


class DemoPageTests(TestCase):
    def test_anonymous_visitors_watch_and_are_offered_a_sign_in(self):
        response = self.client.get("/")
        self.assertEqual(response.status_code, 200)
        self.assertContains(response, 'data-signed-in="false"')
        self.assertContains(response, 'href="/api-auth/login/?next=/"')
        self.assertNotContains(response, 'id="new-todo"')

    def test_signed_in_users_get_the_form_and_a_csrf_token(self):
        user = get_user_model().objects.create_user("alice")
        self.client.force_login(user)
        response = self.client.get("/")
        self.assertContains(response, 'data-signed-in="true"')
        self.assertContains(response, 'id="new-todo"')
        self.assertContains(response, "Signed in as <strong>alice</strong>")
        self.assertRegex(response.content.decode(), r'data-csrf-token="[A-Za-z0-9]{32,}"')

    def test_its_scripts_and_styles_are_served_from_static(self):
        response = self.client.get("/")
        for path in ["todos/app.js", "todos/app.css"]:
            self.assertContains(response, f"/static/{path}")
            self.assertIsNotNone(finders.find(path), path)
        self.assertIsNotNone(finders.find("rest_live/rest-live.js"))
