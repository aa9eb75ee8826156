from django.contrib import admin
from django.urls import include, path
{%- if cookiecutter.include_example_app == "y" %}
from django.views.generic import TemplateView
{%- endif %}
from rest_framework.authtoken.views import obtain_auth_token
{%- if cookiecutter.include_example_app == "y" %}
from rest_framework.routers import DefaultRouter
{%- endif %}
{%- if cookiecutter.metrics == "prometheus" or cookiecutter.include_example_app == "y" %}
{# one blank line between third-party and first-party imports #}
{%- endif %}
{%- if cookiecutter.metrics == "prometheus" %}
from config.metrics import metrics
{%- endif %}
{%- if cookiecutter.include_example_app == "y" %}
from todos.views import TodoViewSet

api = DefaultRouter()
api.register("todos", TodoViewSet)
{%- endif %}

urlpatterns = [
{%- if cookiecutter.include_example_app == "y" %}
    # The live demo page: templates/index.html and static/todos/.
    path("", TemplateView.as_view(template_name="index.html"), name="demo"),
{%- endif %}
    path("admin/", admin.site.urls),
{%- if cookiecutter.include_example_app == "y" %}
    path("api/", include(api.urls)),
{%- endif %}
    path("api/token/", obtain_auth_token, name="api-token"),
    path("api-auth/", include("rest_framework.urls")),
{%- if cookiecutter.metrics == "prometheus" %}
    # For Prometheus, with METRICS_TOKEN (config/metrics.py; README, Metrics).
    path("metrics", metrics, name="metrics"),
{%- endif %}
]
