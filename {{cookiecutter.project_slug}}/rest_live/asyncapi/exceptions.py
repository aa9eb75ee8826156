"""The one error of building the AsyncAPI document."""


class AsyncAPIError(Exception):
    """The document cannot be built; the message says which view and why."""
