"""``didhub stock …``: the platform's own numbers from a terminal."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from didhub.carriers.stock import import_csv
from didhub.cli_common import Cli, Shown, command
from didhub.errors import ValidationFailed

app = typer.Typer(help="The platform's own numbers (DIDHUB_CARRIER=stock).", no_args_is_help=True)


@command(app, "import")
def stock_import(
    cli: Cli,
    file: Annotated[Path, typer.Argument(help="CSV: number,rate_center,city,state,cost")],
) -> Shown:
    """Load numbers the platform owns into stock, all or nothing: a bad row is
    named by line and column and nothing is imported."""
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValidationFailed(f"can't read {file}: {exc}", field="file") from None
    imported = import_csv(cli.db, text).imported
    return Shown({"imported": imported}, lines=[f"{imported} numbers imported into stock"])
