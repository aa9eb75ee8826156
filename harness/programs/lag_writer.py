# Writes a todo every 1/30 s for 8 s, titled with the time it set out to write it, so that a write
# that waited for a connection shows that wait in its lag. Prints "writing" first, then how many
# it made.
import time

from django.db import DatabaseError, connection
from todos.models import Todo

made = 0
end = time.monotonic() + 8
print("writing", flush=True)
while time.monotonic() < end:
    try:
        Todo.objects.create(title=f"{time.time():.4f}")
        made += 1
    except DatabaseError:
        connection.close()
    time.sleep(1 / 30)
print(made, flush=True)
