# One transaction that renames the first three todos, each with " (ticked together)" added.
from django.db import transaction
from todos.models import Todo

with transaction.atomic():
    for todo in Todo.objects.order_by("id")[:3]:
        todo.title += " (ticked together)"
        todo.save()
