# Creates a todo in a transaction, prints "written", holds the transaction open 1.5 s, renames
# the todo "committed", commits, and prints "committed".
import time

from django.db import transaction
from todos.models import Todo

with transaction.atomic():
    todo = Todo.objects.create(title="uncommitted")
    print("written", flush=True)
    time.sleep(1.5)
    todo.title = "committed"
    todo.save()
print("committed", flush=True)
