# Replaces every todo with three, "seed 0" to "seed 2", and prints the DRF token of user
# "example-client", making both if they do not exist yet.
from django.contrib.auth.models import User
from rest_framework.authtoken.models import Token
from todos.models import Todo

Todo.objects.all().delete()
for n in range(3):
    Todo.objects.create(title=f"seed {n}")
user, _ = User.objects.get_or_create(username="example-client")
print(Token.objects.get_or_create(user=user)[0].key)
