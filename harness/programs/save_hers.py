# Saves a todo titled TITLE, owned by "alice": todo PK if PK is set (created if it does not
# exist), else a new one. Prints its pk.
import os

from django.contrib.auth import get_user_model
from todos.models import Todo

alice = get_user_model().objects.get(username="alice")
pk = int(os.environ["PK"]) if os.environ.get("PK") else None
fields = {"title": os.environ["TITLE"], "owner": alice}
todo, _ = Todo.objects.update_or_create(pk=pk, defaults=fields)
print(todo.pk)
