# ROUNDS broadcasts of every todo, a quarter of a second apart.
import os
import time

from rest_live import broadcast
from todos.models import Todo

for _ in range(int(os.environ["ROUNDS"])):
    broadcast(Todo.objects.all())
    time.sleep(0.25)
