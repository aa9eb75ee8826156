"""`auth.Group`, a model every bake has, is what rest_live's own tests serve live."""

from django.contrib.auth.models import Group
from rest_framework import serializers


class GroupSerializer(serializers.ModelSerializer):
    class Meta:
        model = Group
        fields = ["id", "name"]
