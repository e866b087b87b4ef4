from __future__ import annotations

from sqlalchemy import BigInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from didhub.db import Base


class JobTick(Base):
    """The newest tick each periodic job ran for, and the queue job that ran it.

    Procrastinate keeps only a job's latest tick in its periodic-defers table,
    so a worker lagging a whole period behind another can defer a tick the
    other already ran; a job whose tick is older than the last one run (or the
    same tick run by another job) is skipped. A retry is the same job, so it
    runs."""

    __tablename__ = "job_ticks"

    name: Mapped[str] = mapped_column(String(80), primary_key=True)
    tick: Mapped[int] = mapped_column(BigInteger)
    job_id: Mapped[int] = mapped_column(BigInteger)
