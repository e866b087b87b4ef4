"""Recorded carrier payloads (tests/fixtures/<carrier>/), written from each
carrier's public API reference."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).parent / "fixtures"


def load_json(carrier: str, name: str) -> Any:
    return json.loads((FIXTURES / carrier / name).read_text())


def load_text(carrier: str, name: str) -> str:
    return (FIXTURES / carrier / name).read_text()
