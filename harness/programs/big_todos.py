# TODOS todos with 195-character titles, and prints the DRF token of a new user "writer".
import os

from django.contrib.auth.models import User
from rest_framework.authtoken.models import Token
from todos.models import Todo

todos = int(os.environ["TODOS"])
Todo.objects.bulk_create(Todo(title=f"{n:04} " + "x" * 190) for n in range(todos))
print(Token.objects.create(user=User.objects.create_user("writer")).key)
