# Prints how many todos are titled TITLE.
import os

from todos.models import Todo

print(Todo.objects.filter(title=os.environ["TITLE"]).count())
