# ROUNDS broadcasts of the first TODOS todos by pk, half a second apart.
import os
import time

from rest_live import broadcast
from todos.models import Todo

todos = int(os.environ["TODOS"])
for _ in range(int(os.environ["ROUNDS"])):
    broadcast(Todo, list(Todo.objects.order_by("pk").values_list("pk", flat=True)[:todos]))
    time.sleep(0.5)
