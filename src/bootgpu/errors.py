"""The one user-facing exception type: the CLI prints its message as one line and exits 2."""


class BootgpuError(Exception):
    """Bad input or an impossible request; the message names the file, gene, column or option."""
