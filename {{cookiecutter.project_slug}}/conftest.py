"""pytest's entry point: the live-test fixtures (rest_live/pytest_plugin.py). pytest's settings are
in pyproject.toml; `pytest` runs every test, `python manage.py test` every test but *_pytest.py."""

pytest_plugins = ["rest_live.pytest_plugin"]
