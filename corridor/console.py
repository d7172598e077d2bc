"""Terminal output shared by the service CLIs: one-line errors, stable wrapping."""

from __future__ import annotations

import sys
from typing import NoReturn

from rich.console import Console

# soft_wrap: one message stays one line, whatever the terminal width (grep-able logs).
err = Console(stderr=True, highlight=False, soft_wrap=True)
out = Console(highlight=False, soft_wrap=True)


def fail(message: str, code: int = 1) -> NoReturn:
    """Print one error line and exit."""
    err.print(f"[bold red]error:[/] {message}", markup=True)
    sys.exit(code)
