"""Periodic work: what runs, how often, and the two ways it runs.

Each domain lists its jobs in its own ``tasks.py`` (a :class:`Job`: a name, a
function of the :class:`Runtime`, an interval). ``registry.JOBS`` gathers them.
On PostgreSQL they run on Procrastinate's job queue (``queue.py``): every
worker (``didhub worker``, and ``didhub serve`` unless ``DIDHUB_SERVE_JOBS`` is
off) defers the periodic jobs, the database keeps each tick to one job, and a
job's lock keeps it from overlapping itself on another machine. On the
embedded SQLite default, one machine by definition, ``didhub serve`` runs them
in-process (``local.py``). See docs/operations.md, "Periodic jobs".
"""
