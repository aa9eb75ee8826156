# Replaces every todo with TODOS of them, titled "todo 0", "todo 1"...
import os

from todos.models import Todo

Todo.objects.all().delete()
Todo.objects.bulk_create([Todo(title=f"todo {n}") for n in range(int(os.environ["TODOS"]))])
