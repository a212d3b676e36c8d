"""The one base class of the errors that are the user's to fix."""


class LotterysiteError(Exception):
    """A problem the user can fix (recipe, data, checkpoint, store, site); the CLI prints it as one line."""
