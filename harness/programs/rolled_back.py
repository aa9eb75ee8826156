# A todo created in a transaction that is rolled back, then one created after it.
from django.db import transaction
from todos.models import Todo

try:
    with transaction.atomic():
        Todo.objects.create(title="rolled back")
        raise RuntimeError
except RuntimeError:
    pass
Todo.objects.create(title="after the rollback")
