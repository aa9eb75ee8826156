# One statement, so one committed transaction of several rows: appends SUFFIX to every todo's
# title, and prints how many rows it changed.
import os

from django.db import connection

with connection.cursor() as cursor:
    cursor.execute("UPDATE todos_todo SET title = title || %s", [os.environ["SUFFIX"]])
    print(cursor.rowcount)
