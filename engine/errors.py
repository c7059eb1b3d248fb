"""The package's exception types.

Every public call raises only these (or a subclass); each docstring says the
condition and whether retrying the same call can help.
"""

from __future__ import annotations


class MobstoreError(Exception):
    """Base of every mobstore error."""


class InvalidInputError(MobstoreError, ValueError):
    """A message, metadata document, id or argument is malformed; nothing was
    written. Retrying the same input fails the same way."""


class SessionNotFoundError(MobstoreError, KeyError):
    """The named session does not exist (never created, or deleted). Retrying
    helps only after the session is created."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else "session not found"


class SchemaTooNewError(MobstoreError):
    """The database file was written by a newer mobstore (its user_version is
    above what this code knows); nothing was changed. Upgrade mobstore."""


class DigestMismatchError(MobstoreError):
    """A stored digest does not match the recomputed one: the transcript or a
    receipt was changed outside mobstore. Retrying does not help."""


class StoreError(MobstoreError):
    """The database file cannot be used (not SQLite, corrupt, unreadable, or
    an I/O error). Retrying helps only if the cause was transient."""


class ImportFormatError(MobstoreError):
    """A file given to the meerkat importer is not a meerkat realm of a known
    layout, or is damaged. Nothing was imported from it."""


class SessionExistsError(InvalidInputError):
    """create_session was given the id of an existing session; nothing was written.
    Retrying with the same id fails the same way."""


class MissingExtraError(MobstoreError, ImportError):
    """An optional feature needs packages that are not installed (the message names the
    pip extra, e.g. `pip install "mobstore[fleet]"`); nothing was read or written.
    Retrying helps after installing them."""
