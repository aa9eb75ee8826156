# Run with `manage.py shell -c`: the capacity benchmark's todos: BULK todos titled PREFIX and a
# number, padded with "x" to 200 characters, for the bulk broadcasts; then the tracked todo "w0",
# whose pk it prints.
import os

from todos.models import Todo

prefix = os.environ["PREFIX"]
Todo.objects.bulk_create(
    Todo(title=f"{prefix}{i}-".ljust(200, "x")) for i in range(int(os.environ["BULK"]))
)
print(Todo.objects.create(title="w0").pk)
