from django.contrib import admin
from django.urls import include, path
from rest_framework.authtoken.views import obtain_auth_token
{%- if cookiecutter.include_example_app == "y" %}
from rest_framework.routers import DefaultRouter

from todos.views import TodoViewSet

api = DefaultRouter()
api.register("todos", TodoViewSet)
{%- endif %}

urlpatterns = [
    path("admin/", admin.site.urls),
{%- if cookiecutter.include_example_app == "y" %}
    path("api/", include(api.urls)),
{%- endif %}
    path("api/token/", obtain_auth_token, name="api-token"),
    path("api-auth/", include("rest_framework.urls")),
]
