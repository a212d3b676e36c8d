class LotterysiteError(Exception):
    """Something the user must fix; the CLI prints it as one line (message names the file or field and the fix)."""
