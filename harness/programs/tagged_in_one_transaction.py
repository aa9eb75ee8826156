# One transaction that creates a todo and tags it "red".
from django.db import transaction
from todos.models import Tag, Todo

with transaction.atomic():
    Todo.objects.create(title="tagged at once").tags.add(Tag.objects.get(name="red"))
