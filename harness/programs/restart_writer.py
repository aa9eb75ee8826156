# Writes todos for 4 s, through a database restart: creates one each 20 ms, ticking every third,
# and on a DatabaseError closes the connection and tries again. Prints "writing" first, then
# how many it made and how many failed.
import time

from django.db import DatabaseError, connection
from todos.models import Todo

made = failed = 0
end = time.monotonic() + 4
print("writing", flush=True)
while time.monotonic() < end:
    try:
        todo = Todo.objects.create(title=f"write {made}")
        if made % 3 == 2:
            todo.done = True
            todo.save()
        made += 1
    except DatabaseError:
        failed += 1
        connection.close()  # a fresh connection for the next try
        time.sleep(0.05)
    time.sleep(0.02)
print(f"made {made}, failed {failed}", flush=True)
