# Three todos change through the ORM and raw SQL, in three transactions: of the todos in id
# order, number START is renamed "renamed START", the next one ticked or unticked by an UPDATE,
# the third deleted. Prints their three pks first.
import os

from django.db import connection
from todos.models import Todo

start = int(os.environ["START"])
first, second, third = Todo.objects.order_by("id")[start : start + 3]
print(first.pk, second.pk, third.pk)
first.title = f"renamed {start}"
first.save()
with connection.cursor() as cursor:
    cursor.execute("UPDATE todos_todo SET done = NOT done WHERE id = %s", [second.pk])
third.delete()
