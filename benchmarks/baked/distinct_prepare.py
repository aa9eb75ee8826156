# Run with `manage.py shell -c`: the distinct-subscription benchmark's fixtures, all in bulk:
# COUNT users, a token and a todo each, the todo titled with a word only it has. Prints
# [todo pk, word, token] for each, as JSON.
import json
import os

from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token

from todos.models import Todo

count = int(os.environ["COUNT"])
User = get_user_model()
users = User.objects.bulk_create(
    [User(username=f"distinct{i:05d}", password="!") for i in range(count)]
)
tokens = Token.objects.bulk_create([Token(key=Token.generate_key(), user=user) for user in users])
words = [f"s{i:05d}s" for i in range(count)]
todos = Todo.objects.bulk_create(
    [Todo(title=f"{word} w0", owner=user) for word, user in zip(words, users, strict=True)]
)
rows = zip(todos, words, tokens, strict=True)
print(json.dumps([[todo.pk, word, token.key] for todo, word, token in rows]))
