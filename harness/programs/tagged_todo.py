# Tags "red" and "green", and a todo titled "tagged" tagged "red".
from todos.models import Tag, Todo

red, green = Tag.objects.create(name="red"), Tag.objects.create(name="green")
Todo.objects.create(title="tagged").tags.add(red)
