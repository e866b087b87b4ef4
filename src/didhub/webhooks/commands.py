"""``didhub webhooks …``: endpoints, deliveries and the event feed from a terminal."""

from __future__ import annotations

from typing import Annotated

import typer

from didhub.cli_common import Cli, KeyOpt, Shown, Table, command
from didhub.webhooks import delivery as webhook_delivery
from didhub.webhooks import schemas as webhook_schemas
from didhub.webhooks import service as webhooks

app = typer.Typer(help="Webhook endpoints, deliveries and events.", no_args_is_help=True)


@command(app, "add")
def webhooks_add(
    cli: Cli,
    url: str,
    key: KeyOpt,
    events: Annotated[
        list[str] | None,
        typer.Option(
            "--events", help="Event types, comma-separated or repeated (number.*); default all."
        ),
    ] = None,
    description: Annotated[str | None, typer.Option(help="A note for people.")] = None,
) -> Shown:
    """Register a webhook URL; its signing secret is shown once."""
    wanted = [e for item in events or [] for e in item.split(",") if e.strip()] or None
    with cli.acting(key) as (scope, session):
        new = webhooks.create_endpoint(
            session,
            scope,
            url,
            wanted,
            description,
            allow_private=cli.settings.webhook_allow_private,
        )
        out = {**webhook_schemas.webhook_endpoint(new.endpoint), "secret": new.secret}
    return Shown(
        out,
        lines=[
            f"webhook [bold]{out['id']}[/bold] -> {out['url']}",
            f"signing secret (shown once): [bold]{out['secret']}[/bold]",
        ],
    )


@command(app, "list")
def webhooks_list(cli: Cli, key: KeyOpt) -> Shown:
    """List your webhook endpoints."""
    with cli.reading(key) as (scope, session):
        rows = [
            webhook_schemas.webhook_endpoint(e) for e in webhooks.list_endpoints(session, scope)
        ]
    shown = [
        {
            **r,
            "events": ", ".join(r["events"]) if r["events"] else "all",
            "enabled": "yes" if r["enabled"] else "no",
        }
        for r in rows
    ]
    return Shown(
        rows,
        table=Table.of(shown, "id url events enabled created_at:created"),
    )


@command(app, "remove", json_output=False)
def webhooks_remove(cli: Cli, webhook_id: str, key: KeyOpt) -> Shown:
    """Remove an endpoint: nothing more is sent to it; queued deliveries fail."""
    with cli.acting(key) as (scope, session):
        webhooks.remove_endpoint(session, scope, webhook_id)
    return Shown(None, lines=[f"webhook {webhook_id} removed"])


@command(app, "deliveries")
def webhooks_deliveries(
    cli: Cli,
    webhook_id: str,
    key: KeyOpt,
    status: Annotated[str | None, typer.Option(help="pending, delivered or failed")] = None,
    limit: int = 50,
) -> Shown:
    """An endpoint's deliveries, newest first."""
    with cli.reading(key) as (scope, session):
        page = webhooks.list_deliveries(session, scope, webhook_id, status, limit)
        rows = [webhook_schemas.webhook_delivery(row) for row in page.data]
    shown = [
        {
            **r,
            "answer": r["last_error"]
            or (str(r["last_status_code"]) if r["last_status_code"] else ""),
        }
        for r in rows
    ]
    return Shown(
        rows,
        table=Table.of(
            shown,
            "id event_type:event status attempts answer:last_answer next_attempt_at:next_attempt",
        ),
    )


@command(app, "retry", json_output=False)
def webhooks_retry(cli: Cli, delivery_id: str, key: KeyOpt) -> Shown:
    """Queue a delivery again, due now."""
    with cli.acting(key) as (scope, session):
        webhooks.retry_delivery(session, scope, delivery_id)
    return Shown(None, lines=[f"delivery {delivery_id} queued"])


@command(app, "events")
def webhooks_events(
    cli: Cli,
    key: KeyOpt,
    event_type: Annotated[str | None, typer.Option("--type", help="e.g. number.released")] = None,
    limit: int = 50,
) -> Shown:
    """Your event feed, newest first (what your webhooks receive)."""
    with cli.reading(key) as (scope, session):
        page = webhooks.list_events(session, scope, event_type, None, limit)
        rows = [webhook_delivery.payload(e) for e in page.data]
    shown = [{**r, "number": (r["data"].get("number") or {}).get("phone_number", "")} for r in rows]
    return Shown(
        rows,
        table=Table.of(shown, "id type created_at:created number"),
    )


@command(app, "deliver")
def webhooks_deliver(
    cli: Cli,
    limit: Annotated[int, typer.Option(help="At most this many deliveries.")] = 500,
) -> Shown:
    """POST every delivery that is due now, once (what the webhooks.deliver job
    does every DIDHUB_WEBHOOK_SECONDS)."""
    settings = cli.settings
    total = webhook_delivery.DeliveryReport()
    while total.claimed < limit:
        report = webhook_delivery.deliver_due(
            cli.db,
            max_attempts=settings.webhook_max_attempts,
            limit=min(webhook_delivery.BATCH, limit - total.claimed),
            timeout=settings.webhook_timeout_seconds,
            allow_private=settings.webhook_allow_private,
        )
        for name in ("claimed", "attempted", "delivered", "retrying", "failed"):
            setattr(total, name, getattr(total, name) + getattr(report, name))
        if report.claimed == 0:
            break
    return Shown(
        {
            "attempted": total.attempted,
            "delivered": total.delivered,
            "retrying": total.retrying,
            "failed": total.failed,
        }
    )
