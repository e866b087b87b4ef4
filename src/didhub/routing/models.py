"""The routing generation: one counter every process's route cache watches.

A transaction that writes a table an inbound route is read from
(``db.ROUTING_TABLES``) adds one to it just before it commits (``db.py``), so a
server that caches routes (``routing/cache.py``) learns, by reading one row,
that something another process committed may have changed a route.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Integer
from sqlalchemy.orm import Mapped, mapped_column

from didhub.db import Base


class RoutingGeneration(Base):
    __tablename__ = "routing_generation"

    # Row 1: the routing tables (db.ROUTING); row 2: the directory tables
    # (db.DIRECTORY). Inserted by the migrations.
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    generation: Mapped[int] = mapped_column(BigInteger)
