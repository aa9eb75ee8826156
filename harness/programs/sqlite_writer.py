# Not Django: Python's sqlite3 module, run as `python sqlite_writer.py DATABASE STATEMENT...`.
# Runs the statements in one transaction and prints the rows they returned, as JSON.
import json
import sqlite3
import sys

database = sqlite3.connect(sys.argv[1], timeout=30, isolation_level=None)
database.execute("BEGIN IMMEDIATE")
rows = [row for statement in sys.argv[2:] for row in database.execute(statement).fetchall()]
database.execute("COMMIT")
print(json.dumps(rows))
