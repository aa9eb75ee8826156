# Run with `manage.py shell -c`: the hostile benchmark's data, in bulk: BULK todos of ~100
# characters for the snapshots, and VICTIMS victims' todos; prints the victims' todos' pks.
import json
import os

from todos.models import Todo

filler = " lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor" * 2
Todo.objects.bulk_create(
    [Todo(title=(f"bulk-{i:04d}" + filler)[:100]) for i in range(int(os.environ["BULK"]))]
)
victims = Todo.objects.bulk_create(
    [Todo(title=f"victim {k:02d} w0") for k in range(int(os.environ["VICTIMS"]))]
)
print(json.dumps([todo.pk for todo in victims]))
