"""The one tree of crossmargin's exceptions.

    CrossmarginError
     +-- InvalidInput          bad user input or configuration     (HTTP 422, exit code 2)
     +-- NotFound              an id or symbol that does not exist (HTTP 404)
     +-- Conflict              valid input refused by state        (HTTP 409)
     +-- Unauthorized          missing or unknown key              (HTTP 401)
     +-- Forbidden             a key used outside its scope        (HTTP 403)
     +-- StorageError          the event store failed              (HTTP 503)
     |    +-- NoEventStore     none where one was named            (exit code 2)
     +-- InvariantViolation    corruption: stop the writer         (HTTP 500)

Each exception carries its facts as attributes. ``InvalidInput`` names the offending field with a
dotted path (``positions[1].quantity``) so a user can find it.
"""

from __future__ import annotations


class CrossmarginError(Exception):
    """Base of every error crossmargin raises on purpose."""


class InvalidInput(CrossmarginError):
    """A field of user input is missing, malformed or out of range."""

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        self.problem = problem
        super().__init__(f"{field}: {problem}" if field else problem)


class NotFound(CrossmarginError):
    """Something named by the caller does not exist."""

    def __init__(self, what: str, key: str) -> None:
        self.what = what
        self.key = key
        super().__init__(f"{what} {key!r} not found")


class Conflict(CrossmarginError):
    """A well-formed request that the current state refuses."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        self.message = message
        super().__init__(f"{code}: {message}")


class Unauthorized(CrossmarginError):
    """No credentials, or credentials that match nothing."""


class Forbidden(CrossmarginError):
    """Valid credentials used for something outside their scope."""


class StorageError(CrossmarginError):
    """The event store could not complete an operation."""


class NoEventStore(StorageError):
    """Opening an existing store found none: a missing file or schema, or a file that is not an
    SQLite database. The commands that only read a log (``replay``, ``check``) answer it as bad
    input, naming the argument."""


class InvariantViolation(CrossmarginError):
    """State that must never exist was observed (NaN, negative wallet without bankruptcy, ...)."""
