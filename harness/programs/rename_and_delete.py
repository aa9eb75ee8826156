# Renames the first todo, deletes the second, and creates one: while the server was down.
from todos.models import Todo

first, second = Todo.objects.order_by("id")[:2]
first.title = "renamed while the server was down"
first.save()
second.delete()
Todo.objects.create(title="created while the server was down")
