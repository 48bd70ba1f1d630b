"""The ``kanal`` command line: run, chat, crm-sandbox, nlu, scrub, doctor, vault, parked, outbox."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from typing import Annotated

import typer

from bridge.sandbox.cli import app as sandbox_app
from kanal import logging as klog
from kanal.app.ops import outbox_app, parked_app, redis_session
from kanal.settings import Settings
from nlu.cli import app as nlu_app

app = typer.Typer(
    help="Kanal: the multi-channel intake gateway for Jakarta's complaint system (CRM).",
    no_args_is_help=True,
    add_completion=False,
)
app.add_typer(sandbox_app, name="crm-sandbox")
app.add_typer(nlu_app, name="nlu")
app.add_typer(parked_app, name="parked")
app.add_typer(outbox_app, name="outbox")


def _settings(default_level: str = "INFO") -> Settings:
    settings = Settings()
    level = os.environ.get("KANAL_LOG_LEVEL") or default_level
    klog.configure(level=level, fmt=settings.kanal.log_format)
    return settings


@app.command()
def run() -> None:
    """The main job: bridge, every configured channel, and the local pieces (embedded Redis,
    sandbox CRM) that are not configured elsewhere. The console channel is attached to this
    terminal. Stops cleanly on Ctrl-C / SIGTERM."""
    from kanal.app.main import run_main

    settings = _settings("WARNING" if sys.stdin.isatty() else "INFO")
    raise typer.Exit(asyncio.run(run_main(settings)))


@app.command()
def chat(
    user: Annotated[
        str, typer.Option("--user", help="Sender id of this console user.")
    ] = "console-user",
    json_mode: Annotated[
        bool, typer.Option("--json", help="Print each bot message as one JSON line.")
    ] = False,
    wait: Annotated[
        float,
        typer.Option(help="Seconds to wait at end of input for a tracking number or answer."),
    ] = 60.0,
) -> None:
    """Chat with Kanal in this terminal (stdin lines; /lokasi <lat> <lon>, /foto <path>)."""
    from kanal.app.chat import run_chat

    settings = _settings("WARNING")
    raise typer.Exit(asyncio.run(run_chat(settings, user=user, json_mode=json_mode, wait_s=wait)))


@app.command()
def scrub() -> None:
    """Read JSON lines {"text": ...} on stdin; write one {"text": ...} line each, scrubbed
    exactly as the bridge scrubs a report's free text before it leaves for the CRM."""
    from bridge.scrub import scrub as scrub_text

    bad = 0
    for n, line in enumerate(sys.stdin, 1):
        if not line.strip():
            continue
        try:
            doc = json.loads(line)
            text = doc["text"]
            if not isinstance(text, str):
                raise TypeError("text must be a string")
        except (ValueError, KeyError, TypeError) as exc:
            bad += 1
            print(f'kanal scrub: line {n}: expected {{"text": ...}} ({exc})', file=sys.stderr)
            print(json.dumps({"text": None, "error": "bad input"}), flush=True)
            continue
        print(json.dumps({"text": scrub_text(text)}, ensure_ascii=False), flush=True)
    raise typer.Exit(1 if bad else 0)


@app.command()
def doctor(
    probe_idempotency: Annotated[
        bool,
        typer.Option(
            "--probe-idempotency",
            help="File two probe requests with one Idempotency-Key to see if the CRM honours it.",
        ),
    ] = False,
) -> None:
    """Check configuration and reachability of every configured part."""
    from kanal.app.doctor import run_doctor

    settings = _settings("WARNING")
    raise typer.Exit(asyncio.run(run_doctor(settings, probe_idempotency=probe_idempotency)))


vault_app = typer.Typer(help="The identity vault: retention, key rotation, forgetting.")
app.add_typer(vault_app, name="vault")


async def _with_vault(action: str, dry_run: bool) -> int:
    from bridge.vault import Vault
    from kanal.keys import Keyring

    s = Settings()
    async with redis_session(s) as redis:
        keyring = Keyring.from_setting(s.kanal.secret_key.get_secret_value(), s.kanal.data_dir)
        vault = Vault(redis, keyring, retention_days=s.kanal.vault_retention_days)
        if action == "purge":
            r = await vault.purge(dry_run=dry_run)
            verb = "would purge" if dry_run else "purged"
            print(f"{verb} {r.purged} of {r.scanned} contacts ({r.kept_open} with open reports)")
        else:
            print(f"re-encrypted {await vault.rotate()} contacts with the newest key")
    return 0


@vault_app.command("forget")
def vault_forget(
    channel: Annotated[str, typer.Option("--channel", help="The citizen's channel.")],
    user: Annotated[str, typer.Option("--user", help="Their id on it (chat id, number, …).")],
) -> None:
    """Remove a citizen from Kanal (a written request under UU PDP 27/2022): their contact,
    every map from their reports back to them, their conversation. Reports stay, unnamed."""
    _settings("WARNING")
    raise typer.Exit(asyncio.run(_forget(channel, user)))


async def _forget(channel: str, user: str) -> int:
    from bridge.forget import forget
    from kanal.keys import Keyring

    s = Settings()
    keyring = Keyring.from_setting(s.kanal.secret_key.get_secret_value(), s.kanal.data_dir)
    conv = keyring.pseudonym(channel, user)
    async with redis_session(s) as redis:
        done = await forget(redis, conv)
    print(f"forgotten: {conv} ({done.reports} reports unlinked, {done.messages} messages removed)")
    return 0


@vault_app.command("purge")
def vault_purge(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Count, do not delete.")] = False,
) -> None:
    """Delete contacts past KANAL_VAULT_RETENTION_DAYS whose reports are all closed."""
    _settings("WARNING")
    raise typer.Exit(asyncio.run(_with_vault("purge", dry_run)))


@vault_app.command("rotate")
def vault_rotate() -> None:
    """Re-encrypt every contact with the newest key in KANAL_SECRET_KEY."""
    _settings("WARNING")
    raise typer.Exit(asyncio.run(_with_vault("rotate", False)))


def main() -> None:
    app()


__all__ = ["app", "main"]
