"""The change capture: what a view reads is inferred from its serializer and queryset, `migrate`
keeps the triggers in step, `live_capture` lists and removes them, and a system check names a
table whose capture is missing; changes to rows a serializer shows through a nested serializer or
a reverse foreign key reach the views that show them."""

from io import StringIO
from unittest import mock

from django.contrib.admin.models import ADDITION, LogEntry
from django.contrib.auth.models import Group, Permission, User
from django.contrib.contenttypes.models import ContentType
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import SimpleTestCase, TransactionTestCase
from rest_framework import serializers, viewsets

from rest_live.capture import registry
from rest_live.capture.dependencies import read_by
from rest_live.mixins import RealtimeMixin
from rest_live.routers import RealtimeRouter
from tests.groups import served_at
from tests.live import LiveTestCase


class MemberSerializer(serializers.ModelSerializer):
    class Meta:
        model = Group
        fields = ["id", "name"]


class UserSerializer(serializers.ModelSerializer):
    groups = MemberSerializer(many=True, read_only=True)  # nested, through a many-to-many
    # A reverse foreign key: each admin log entry holds its user's key.
    edits = serializers.SlugRelatedField(
        source="logentry_set", many=True, read_only=True, slug_field="object_repr"
    )

    class Meta:
        model = User
        fields = ["id", "username", "groups", "edits"]


class UserViewSet(RealtimeMixin, viewsets.ReadOnlyModelViewSet):
    queryset = User.objects.prefetch_related("groups", "logentry_set")
    serializer_class = UserSerializer
    permission_classes = []


class PermissionSerializer(serializers.ModelSerializer):
    class Meta:
        model = Permission
        fields = ["id", "codename"]


class KeysOnlySerializer(serializers.ModelSerializer):
    class Meta:
        model = Group
        fields = ["id", "name", "permissions"]  # primary keys of a many-to-many


class KeysOnlyViewSet(RealtimeMixin, viewsets.ReadOnlyModelViewSet):
    queryset = Group.objects.all()
    serializer_class = KeysOnlySerializer


class MethodSerializer(serializers.ModelSerializer):
    member_count = serializers.SerializerMethodField()

    class Meta:
        model = Group
        fields = ["id", "member_count"]

    def get_member_count(self, group):
        return group.user_set.count()


class MethodViewSet(RealtimeMixin, viewsets.ReadOnlyModelViewSet):
    queryset = Group.objects.all()
    serializer_class = MethodSerializer


class DeclaredMethodViewSet(MethodViewSet):
    live_dependencies = ["user"]


# Registered at import, as config/routing.py's views are: `migrate` captures what they read.
users_router = RealtimeRouter()
users_router.register(UserViewSet)


def described(view):
    """{path of model labels: columns read} of `view`'s dependencies."""
    found = {}
    for dependency in read_by(view).dependencies:
        path = " -> ".join(hop.target._meta.label for hop in dependency.hops)
        found[path] = dependency.columns
    return found


class InferenceTests(SimpleTestCase):
    def test_a_nested_serializer_through_a_many_to_many_and_a_reverse_foreign_key(self):
        self.assertEqual(
            described(UserViewSet),
            {
                "auth.User_groups": {"group_id"},  # the key leading on to the group
                "auth.User_groups -> auth.Group": {"id", "name"},
                "admin.LogEntry": {"object_repr"},
            },
        )

    def test_primary_keys_of_a_many_to_many_read_only_the_link_rows(self):
        self.assertEqual(described(KeysOnlyViewSet), {"auth.Group_permissions": {"permission_id"}})

    def test_a_method_field_is_reported_unless_declared(self):
        self.assertEqual(len(read_by(MethodViewSet).unfollowed), 1)
        self.assertEqual(read_by(DeclaredMethodViewSet).unfollowed, [])
        self.assertIn("auth.User_groups", described(DeclaredMethodViewSet))

    def test_a_declared_lookup_that_leads_nowhere_is_a_configuration_error(self):
        class Broken(MethodViewSet):
            live_dependencies = ["no_such_thing"]

        with self.assertRaisesMessage(ImproperlyConfigured, "Broken.live_dependencies"):
            read_by(Broken)


class FollowedCheckTests(SimpleTestCase):
    def test_what_cannot_be_followed_is_a_warning_that_says_how_to_declare_it(self):
        # As if registered, without leaving it registered for the other tests.
        with mock.patch.dict(registry._views, {MethodViewSet: read_by(MethodViewSet)}):
            found = [
                message
                for message in checks.run_checks()
                if message.id == "rest_live.W003" and message.obj is MethodViewSet
            ]
        self.assertEqual(len(found), 1)
        self.assertIn("SerializerMethodField", found[0].msg)
        self.assertIn("live_dependencies", found[0].hint)


class InstallationTests(TransactionTestCase):
    def command(self, *args):
        out = StringIO()
        call_command("live_capture", *args, stdout=out)
        return out.getvalue()

    def capture_errors(self):
        return [
            message
            for message in checks.run_checks(databases=["default"])
            if message.id == "rest_live.E003"
        ]

    def test_an_unknown_database_is_a_clear_error(self):
        with self.assertRaisesMessage(CommandError, "No database 'elsewhere' in DATABASES"):
            self.command("--database", "elsewhere")

    def test_migrate_installed_the_capture_of_every_table_a_view_reads(self):
        listing = self.command()
        for table in ("auth_group", "auth_user", "auth_user_groups", "django_admin_log"):
            self.assertRegex(listing, rf"\(table {table}\): installed")
        self.assertEqual(self.capture_errors(), [])

    def test_without_the_capture_the_check_names_each_table_and_migrate_restores_it(self):
        self.assertIn("auth_group", self.command("remove"))
        errors = self.capture_errors()
        self.assertIn("auth.Group (table auth_group) is missing", "\n".join(e.msg for e in errors))
        self.assertIn("manage.py migrate", errors[0].hint)
        self.assertRegex(self.command(), r"\(table auth_group\): missing")
        call_command("migrate", verbosity=0)
        self.assertEqual(self.capture_errors(), [])

    def test_a_view_registered_later_is_captured_by_the_next_migrate_and_dropped_after(self):
        class PermissionViewSet(RealtimeMixin, viewsets.ReadOnlyModelViewSet):
            queryset = Permission.objects.all()
            serializer_class = PermissionSerializer

        added = {PermissionViewSet: read_by(PermissionViewSet)}
        with mock.patch.dict(registry._views, added), mock.patch.dict(registry._cache, clear=True):
            messages = "\n".join(error.msg for error in self.capture_errors())
            self.assertIn("auth.Permission (table auth_permission) is missing", messages)
            call_command("migrate", verbosity=0)
            self.assertEqual(self.capture_errors(), [])
        # No registered view reads it any more: the next migrate removes its capture.
        self.assertIn("auth_permission", self.command())
        call_command("migrate", verbosity=0)
        self.assertNotIn("auth_permission", self.command())

    def test_a_capture_that_differs_from_the_views_is_stale(self):
        drop = {"postgresql": "DROP TRIGGER rest_live_delete ON auth_group"}.get(
            connection.vendor, 'DROP TRIGGER "rest_live_auth_group_delete"'
        )
        with connection.cursor() as cursor:
            cursor.execute(drop)
        self.assertRegex(self.command(), r"\(table auth_group\): stale")
        self.assertIn("is stale", self.capture_errors()[0].msg)
        self.command("install")
        self.assertEqual(self.capture_errors(), [])


class RelatedRowTests(LiveTestCase):
    async def test_renaming_a_group_updates_the_users_in_it(self):
        self.application = served_at("ws/", UserViewSet)
        user = await self.create_user("ada")
        editors = await self.db(Group.objects.create, name="editors")
        await self.db(user.groups.add, editors)
        socket = await self.connect(path="/ws/")
        sub = await self.subscribe(socket, "auth.User")
        editors.name = "authors"
        await self.db(editors.save)
        message = await self.assertBroadcast(socket, "UPDATED", {"username": "ada"}, id=sub)
        self.assertEqual(message["instance"]["groups"], [{"id": editors.pk, "name": "authors"}])
        await self.assertNothing(socket)

    async def test_a_row_of_a_reverse_foreign_key_added_renamed_and_deleted(self):
        self.application = served_at("ws/", UserViewSet)
        user = await self.create_user("ada")
        group_type = await self.db(ContentType.objects.get_for_model, Group)
        socket = await self.connect(path="/ws/")
        sub = await self.subscribe(socket, "auth.User")

        async def assertEdits(edits):
            message = await self.assertBroadcast(socket, "UPDATED", {"username": "ada"}, id=sub)
            self.assertEqual(message["instance"]["edits"], edits)

        entry = await self.db(
            LogEntry.objects.create,
            user=user,
            content_type=group_type,
            object_repr="editors",
            action_flag=ADDITION,
        )
        await assertEdits(["editors"])
        entry.object_repr = "authors"
        await self.db(entry.save)
        await assertEdits(["authors"])
        await self.db(entry.delete)
        await assertEdits([])
        await self.assertNothing(socket)
