# Every kind of change: creates CREATES todos titled TITLE and a number, ticks the first and
# deletes the second.
import os

from todos.models import Todo

title, creates = os.environ["TITLE"], int(os.environ["CREATES"])
made = [Todo.objects.create(title=f"{title} {n}") for n in range(creates)]
made[0].done = True
made[0].save()
made[1].delete()
