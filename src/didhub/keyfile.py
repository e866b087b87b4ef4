"""Secrets generated on first start when the operator set none (the dashboard's
signing key, the SIP edge's token): written once, readable by the owner only,
and read back on every later start."""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path

log = logging.getLogger("didhub")


def read_or_create(path: Path, what: str, variable: str, min_length: int = 32) -> str:
    """The secret kept in ``path``, generated into it (mode 0600) if there is
    none yet; ``what`` and ``variable`` name it in the warning an operator sees."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        value = path.read_text().strip()
        if len(value) < min_length:
            raise RuntimeError(
                f"{path} holds no usable {what}; delete it or set {variable}"
            ) from None
        return value
    value = secrets.token_urlsafe(48)
    with os.fdopen(fd, "w") as out:
        out.write(value + "\n")
    log.warning(
        "generated %s into %s; set %s (the same on every server) in production",
        what,
        path.resolve(),
        variable,
    )
    return value
