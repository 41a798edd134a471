"""The one exception type users see: a message that names the bad input and the fix."""


class RagrerankError(Exception):
    """A problem the user can fix (missing docs, unknown model, bad query).

    The CLI prints it as a single line and exits with status 2; library callers catch it
    like any other exception. Deep library tracebacks are wrapped into it at the boundary.
    """
