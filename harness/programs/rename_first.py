# Renames the first todo (in id order) TITLE. With ROLL_BACK=1 it first renames it in a
# transaction that rolls back, whose change id the log then never holds.
import os

from django.db import transaction
from todos.models import Todo

todo = Todo.objects.order_by("id").first()
if os.environ.get("ROLL_BACK") == "1":
    with transaction.atomic():
        Todo.objects.filter(pk=todo.pk).update(title="rolled back")
        transaction.set_rollback(True)
todo.title = os.environ["TITLE"]
todo.save()
