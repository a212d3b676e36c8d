"""The one base class of the errors a user must fix; the CLI prints them as one line, anything else as a traceback."""


class LotterysiteError(Exception):
    """A problem with what the user gave lotterysite (a recipe, data, a checkpoint, a store, a site); the message
    names the value, the constraint and the fix."""
