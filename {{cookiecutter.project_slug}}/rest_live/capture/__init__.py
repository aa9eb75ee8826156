"""Change capture: every committed change of every table a live view reads, taken from the
database itself by triggers that write it to the change log, whoever made it.

registry.py knows the registered views, dependencies.py what each reads, triggers.py the SQL,
install.py keeps the triggers in step with the views, listener.py hears PostgreSQL's NOTIFY.
"""
