"""``kanal crm-sandbox``: run the local Open311 CRM and act as one of its officers.

``--webhook-url``/``--webhook-secret`` (or ``CRM_SANDBOX_WEBHOOK_URL``/``_SECRET``) make the
running server push every status update there, signed, including those that
``kanal crm-sandbox officer status`` records from another terminal.
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Annotated

import typer

from bridge.sandbox.catalog import DEFAULT_NOTES
from bridge.sandbox.models import OFFICER_STATUSES, ExternalStatus, format_ts
from bridge.sandbox.modes import CITY_CODES, SandboxMode
from bridge.sandbox.server import SandboxServer
from bridge.sandbox.store import SandboxStore
from kanal.errors import NotAnImage

DEFAULT_DB = Path("var/crm-sandbox.sqlite3")
DEFAULT_URL = "http://127.0.0.1:8311"
DbOption = Annotated[Path, typer.Option("--db", help="SQLite file of the sandbox CRM.")]

app = typer.Typer(
    help="The local Open311 GeoReport v2 CRM (sandbox) for development and demos.",
    no_args_is_help=False,
)
officer = typer.Typer(help="Act as a CRM officer on the sandbox's requests.")
app.add_typer(officer, name="officer")


async def _serve(
    db: Path,
    host: str,
    port: int,
    api_key: str | None,
    jurisdiction: str | None,
    webhook_url: str | None,
    webhook_secret: str | None,
    mode: SandboxMode,
) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        async with SandboxServer(
            db,
            host=host,
            port=port,
            api_key=api_key,
            jurisdiction_id=jurisdiction,
            webhook_url=webhook_url,
            webhook_secret=webhook_secret,
            mode=mode,
        ) as server:
            typer.echo(f"CRM sandbox serving Open311 at {server.url} (database {db})")
            if webhook_url:
                typer.echo(f"Pushing status updates, signed, to {webhook_url}")
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
    webhook_url: Annotated[
        str | None,
        typer.Option(
            envvar="CRM_SANDBOX_WEBHOOK_URL",
            help="Push every status update here, e.g. http://127.0.0.1:8080/crm/webhook.",
        ),
    ] = None,
    webhook_secret: Annotated[
        str | None,
        typer.Option(
            envvar="CRM_SANDBOX_WEBHOOK_SECRET",
            help="HMAC-SHA256 secret that signs the pushes (the bridge's CRM_WEBHOOK_SECRET).",
            show_default=False,
        ),
    ] = None,
    string_update_ids: Annotated[
        bool, typer.Option(help='Update ids as strings ("61553370-1"), as some CRMs send.')
    ] = False,
    tokens: Annotated[
        bool,
        typer.Option(help="Answer POST requests.json with a token; the id comes later."),
    ] = False,
    token_delay: Annotated[
        float, typer.Option(help="Seconds until a token's request has its id.")
    ] = 2.0,
    city_codes: Annotated[
        bool, typer.Option(help="Another city's service codes (PJU-04, …), not Kanal's.")
    ] = False,
    ignore_idempotency_key: Annotated[
        bool, typer.Option(help="Ignore the Idempotency-Key header, as most servers do.")
    ] = False,
    max_updates: Annotated[
        int | None, typer.Option(help="Cut servicerequestupdates.json at this many items.")
    ] = None,
) -> None:
    """Serve the sandbox CRM in the foreground until SIGINT/SIGTERM (no subcommand)."""
    if ctx.invoked_subcommand is not None:
        return
    if webhook_url and not webhook_secret:
        raise typer.BadParameter("a webhook needs a secret", param_hint="--webhook-secret")
    if webhook_url and not webhook_url.startswith(("http://", "https://")):
        raise typer.BadParameter("use an http(s) URL", param_hint="--webhook-url")
    mode = SandboxMode(
        string_update_ids=string_update_ids,
        tokens=tokens,
        token_delay_s=token_delay,
        service_codes=CITY_CODES if city_codes else None,
        honour_idempotency_key=not ignore_idempotency_key,
        max_updates=max_updates,
    )
    try:
        asyncio.run(
            _serve(
                db,
                host,
                port,
                api_key,
                jurisdiction_id,
                webhook_url or None,
                webhook_secret,
                mode,
            )
        )
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
    photo: Annotated[
        Path | None,
        typer.Option(
            exists=True,
            dir_okay=False,
            readable=True,
            help="A proof photo file; the sandbox serves it at <base-url>/media/<id>.jpg.",
        ),
    ] = None,
    base_url: Annotated[
        str,
        typer.Option(envvar="CRM_SANDBOX_URL", help="Where the sandbox server is reached."),
    ] = DEFAULT_URL,
    db: DbOption = DEFAULT_DB,
) -> None:
    """Change a request's status; the change appears in the updates feed (and is pushed)."""
    if photo is not None and photo_url:
        raise typer.BadParameter("give --photo or --photo-url, not both", param_hint="--photo")
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
    if photo is not None:
        try:
            media_id = store.save_photo(photo.read_bytes())
        except NotAnImage:
            raise typer.BadParameter("not a photo we can read", param_hint="--photo") from None
        photo_url = f"{base_url.rstrip('/')}/media/{media_id}.jpg"
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
