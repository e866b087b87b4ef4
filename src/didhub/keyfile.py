"""Secrets generated on first start when the operator set none (the dashboard's
signing key, the SIP edge's token): written once, readable by the owner only,
and read back on every later start."""

from __future__ import annotations

import logging
import os
import secrets
import tempfile
from pathlib import Path

log = logging.getLogger("didhub")


def read_or_create(path: Path, what: str, variable: str, min_length: int = 32) -> str:
    """The secret kept in ``path``, generated into it (mode 0600) if there is
    none yet; ``what`` and ``variable`` name it in the warning an operator sees."""
    if path.exists():
        return _read(path, what, variable, min_length)
    value = secrets.token_urlsafe(48)
    # Written aside, then linked into place (a link fails if the name exists):
    # the file never shows empty, so processes starting at once (serve
    # --workers) all read the one secret that won.
    fd, aside = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as out:  # mkstemp: mode 0600
            out.write(value + "\n")
        os.link(aside, path)
    except FileExistsError:
        return _read(path, what, variable, min_length)
    finally:
        os.unlink(aside)
    log.warning(
        "generated %s into %s; set %s (the same on every server) in production",
        what,
        path.resolve(),
        variable,
    )
    return value


def _read(path: Path, what: str, variable: str, min_length: int) -> str:
    value = path.read_text().strip()
    if len(value) < min_length:
        raise RuntimeError(f"{path} holds no usable {what}; delete it or set {variable}")
    return value
