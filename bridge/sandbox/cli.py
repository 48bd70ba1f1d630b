"""``kanal crm-sandbox``: run the local Open311 CRM and act as one of its officers."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Annotated

import typer

from bridge.sandbox.catalog import DEFAULT_NOTES
from bridge.sandbox.models import OFFICER_STATUSES, ExternalStatus, format_ts
from bridge.sandbox.server import SandboxServer
from bridge.sandbox.store import SandboxStore

DEFAULT_DB = Path("var/crm-sandbox.sqlite3")
DbOption = Annotated[Path, typer.Option("--db", help="SQLite file of the sandbox CRM.")]

app = typer.Typer(
    help="The local Open311 GeoReport v2 CRM (sandbox) for development and demos.",
    no_args_is_help=False,
)
officer = typer.Typer(help="Act as a CRM officer on the sandbox's requests.")
app.add_typer(officer, name="officer")


async def _serve(
    db: Path, host: str, port: int, api_key: str | None, jurisdiction: str | None
) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        async with SandboxServer(
            db, host=host, port=port, api_key=api_key, jurisdiction_id=jurisdiction
        ) as server:
            typer.echo(f"CRM sandbox serving Open311 at {server.url} (database {db})")
            await stop.wait()
            typer.echo("Stopping the CRM sandbox.")
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def _open(db: Path) -> SandboxStore:
    if not db.is_file():
        typer.echo(f"No sandbox database at {db} (start `kanal crm-sandbox` first).", err=True)
        raise typer.Exit(1)
    return SandboxStore(db)


@app.callback(invoke_without_command=True)
def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on (0: any free port).")] = 8311,
    db: DbOption = DEFAULT_DB,
    api_key: Annotated[
        str | None, typer.Option(help="Require this api_key on submissions.")
    ] = None,
    jurisdiction_id: Annotated[
        str | None, typer.Option(help="Require this jurisdiction_id.")
    ] = None,
) -> None:
    """Serve the sandbox CRM in the foreground until SIGINT/SIGTERM (no subcommand)."""
    if ctx.invoked_subcommand is not None:
        return
    try:
        asyncio.run(_serve(db, host, port, api_key, jurisdiction_id))
    except OSError as exc:
        typer.echo(f"Cannot listen on {host}:{port}: {exc.strerror or exc}", err=True)
        raise typer.Exit(1) from None


@officer.command("status")
def officer_status(
    request_id: Annotated[int, typer.Argument(help="The service request id (tracking number).")],
    status: Annotated[str, typer.Argument(help=f"New status: {', '.join(OFFICER_STATUSES)}.")],
    note: Annotated[
        str | None, typer.Option(help="Note for the citizen (required to reject).")
    ] = None,
    photo_url: Annotated[
        str | None, typer.Option(help="URL of a proof photo, e.g. after resolving.")
    ] = None,
    db: DbOption = DEFAULT_DB,
) -> None:
    """Change a request's status; the change appears in the updates feed."""
    if status not in OFFICER_STATUSES:
        raise typer.BadParameter(
            f"choose one of {', '.join(OFFICER_STATUSES)}", param_hint="STATUS"
        )
    code: ExternalStatus = next(known for known in OFFICER_STATUSES if known == status)
    if code == "rejected" and not (note and note.strip()):
        raise typer.BadParameter("a rejection needs a reason", param_hint="--note")
    store = _open(db)
    if store.get_request(request_id) is None:
        typer.echo(f"No service request {request_id} in {db}.", err=True)
        raise typer.Exit(1)
    update = store.add_update(request_id, code, note or DEFAULT_NOTES[code], photo_url)
    typer.echo(f"Request {request_id} is now {code} ({update.status}); update {update.update_id}.")


@app.command("list")
def list_requests(db: DbOption = DEFAULT_DB) -> None:
    """Print the sandbox's service requests as a table, newest first."""
    rows = [
        (
            str(item.id),
            item.service_code,
            item.status,
            item.external_status_code,
            format_ts(item.requested_datetime)[:19].replace("T", " "),
            item.attributes.get("kelurahan", ""),
            "" if item.rating is None else str(item.rating),
            (item.description or "").replace("\n", " ")[:40],
        )
        for item in _open(db).list_requests()
    ]
    header = (
        "ID",
        "SERVICE",
        "STATUS",
        "DETAIL",
        "REQUESTED (UTC)",
        "KELURAHAN",
        "RATING",
        "DESCRIPTION",
    )
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    for row in (header, *rows):
        typer.echo(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )
    if not rows:
        typer.echo("(no requests yet)")
