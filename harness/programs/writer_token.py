# Prints the DRF token of user "writer", making both if they do not exist yet.
from django.contrib.auth.models import User
from rest_framework.authtoken.models import Token

user, _ = User.objects.get_or_create(username="writer")
print(Token.objects.get_or_create(user=user)[0].key)
