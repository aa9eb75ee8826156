# The ids of the tests `manage.py test` runs, found by its own discovery: one JSON list.
import json

from django.test.runner import DiscoverRunner
from django.test.utils import iter_test_cases

suite = DiscoverRunner(verbosity=0).build_suite([])
print(json.dumps(sorted(test.id() for test in iter_test_cases(suite))))
