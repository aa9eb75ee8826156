# The project's URLs, and the private view's REST twin at /api/private/ (private_asgi.py).
from django.urls import include, path

from todos.tests.views import ReusedMyTodoViewSet

urlpatterns = [
    path("api/private/", ReusedMyTodoViewSet.as_view({"get": "list"})),
    path("", include("config.urls")),
]
