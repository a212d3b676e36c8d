"""The one base class of the errors a user must fix; the CLI prints them as one line, anything else as a traceback."""

import re


class LotterysiteError(Exception):
    """A problem with what the user gave lotterysite (a recipe, data, a checkpoint, a store, a site); the message
    names the value, the constraint and the fix."""


# Terminal controls: C0 and C1 (ESC starts ANSI and OSC sequences; newlines break a table), DEL, and the
# bidirectional overrides that reorder what a terminal shows.
_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def escape_controls(text: str) -> str:
    """`text` with every terminal control character written as its Python escape (ESC as \\x1b), so a name from
    a store or a lock prints as text, never as a command to the terminal."""
    return _CONTROLS.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)
