# Makes ADMIN_USER a superuser whose password is ADMIN_PASSWORD.
import os

from django.contrib.auth.models import User

admin, _ = User.objects.get_or_create(username=os.environ["ADMIN_USER"])
admin.is_staff = admin.is_superuser = True
admin.set_password(os.environ["ADMIN_PASSWORD"])
admin.save()
