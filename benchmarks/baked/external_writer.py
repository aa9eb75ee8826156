"""The capture latency benchmark's writer from outside Django (benchmarks/capture_latency.py): an
`UPDATE` of one todo's title from `psql`, or from Python's `sqlite3` module. Standard library only.

    python external_writer.py psql PSQL DATABASE_URL TABLE PK
    python external_writer.py sqlite DATABASE_FILE TABLE PK

Reads one title per line on stdin, sets the todo's title to it in its own transaction, and prints
`time.monotonic()` (one clock for every process of the machine) taken once the COMMIT returned:
for psql, when psql (autocommit, one long-lived session) echoes back after the `UPDATE`.
"""

import json
import sqlite3
import subprocess
import sys
import time


def psql_writer(psql, url, table, pk):
    session = subprocess.Popen(
        [psql, "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", url],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        bufsize=1,
    )

    def write(title):
        quoted = title.replace("'", "''")
        sql = f"UPDATE {table} SET title = '{quoted}' WHERE id = {pk};"
        session.stdin.write(f"{sql}\n\\echo done\n")
        session.stdin.flush()
        if session.stdout.readline().strip() != "done":
            raise SystemExit(f"psql failed (exit code {session.poll()})")
        return time.monotonic()

    return write


def sqlite_writer(path, table, pk):
    database = sqlite3.connect(path, timeout=10)

    def write(title):
        database.execute(f"UPDATE {table} SET title = ? WHERE id = ?", (title, pk))
        database.commit()
        return time.monotonic()

    return write


def main():
    kind, *args = sys.argv[1:]
    write = psql_writer(*args) if kind == "psql" else sqlite_writer(*args)
    print("ready", flush=True)
    for line in sys.stdin:
        print(json.dumps(write(line.strip())), flush=True)


if __name__ == "__main__":
    main()
