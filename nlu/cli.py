"""``kanal nlu train | serve | parse | eval`` (also ``python -m nlu.cli``)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path
from typing import IO, Annotated, Any

import typer

from kanal import logging as klog
from kanal.settings import KanalSettings, RasaSettings
from nlu import rasa
from nlu.evaluate import Scores, render_confusion_png
from nlu.types import Understanding

app = typer.Typer(
    help="Kanal's NLU: train, serve, parse with and evaluate the Rasa model in nlu/.",
    no_args_is_help=True,
    add_completion=False,
)


def _setup(default_level: str = "WARNING") -> KanalSettings:
    settings = KanalSettings()
    level = os.environ.get("KANAL_LOG_LEVEL") or default_level
    klog.configure(level=level, fmt=settings.log_format)
    return settings


@app.command()
def train(
    force: Annotated[
        bool, typer.Option("--force", help="Train even if the cached model is current.")
    ] = False,
) -> None:
    """Train the Rasa model if nlu/config.yml or nlu/data/*.yml changed (cached by content)."""
    _setup("INFO")
    try:
        result = rasa.train(force=force)
    except rasa.RasaError as exc:
        typer.echo(f"kanal nlu train: {exc}", err=True)
        raise typer.Exit(1) from exc
    state = "trained" if result.trained else "up to date"
    typer.echo(f"{result.path} ({state}, {result.seconds:.1f} s)")


@app.command()
def serve(
    port: Annotated[int, typer.Option(help="Port (0: a free one).")] = 5005,
    host: Annotated[
        str, typer.Option(help="Address to listen on (0.0.0.0 in a container).")
    ] = "127.0.0.1",
) -> None:
    """Run the Rasa server (training first if needed) until Ctrl-C / SIGTERM; the workers reach
    it through RASA_URL."""
    settings = _setup("INFO")
    server = rasa.RasaServer(port=port, host=host, log_dir=settings.data_dir)
    stop = asyncio.Event()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        async with server:
            typer.echo(f"Rasa ready at {server.url} (RASA_URL={server.url})")
            await stop.wait()

    try:
        asyncio.run(main())
    except rasa.RasaError as exc:
        typer.echo(f"kanal nlu serve: {exc}", err=True)
        raise typer.Exit(1) from exc


def understanding_json(text: str, u: Understanding) -> dict[str, Any]:
    """The parse contract: ``{"text","intent","category","confidence","entities"}``."""
    return {
        "text": text,
        "intent": u.intent,
        "category": u.category,
        "confidence": u.category_confidence if u.category else u.confidence,
        "entities": [
            {"entity": e.entity, "value": e.value, "start": e.start, "end": e.end}
            for e in u.entities
        ],
    }


async def parse_lines(
    lines: IO[str], out: IO[str], settings: RasaSettings, data_dir: Path = Path("var")
) -> int:
    """One JSON line out per JSON line in, through the NLU the bots use. Returns lines read.

    ``confidence`` is how sure the NLU is of the answer as a whole: for a report, of intent and
    category together (P(lapor) x P(category)); otherwise of the intent. A line that is not
    ``{"text": "..."}`` gets ``{"error": ...}`` back, so answers stay one per line.
    """
    from nlu.managed import open_nlu

    count = 0
    async with open_nlu(settings, data_dir=data_dir, wait=True) as nlu:
        while True:
            line = await asyncio.to_thread(lines.readline)
            if not line:
                break
            if not line.strip():
                continue
            count += 1
            try:
                doc = json.loads(line)
                text = doc["text"]
                if not isinstance(text, str):
                    raise TypeError("text is not a string")
            except (ValueError, KeyError, TypeError) as exc:
                reply: dict[str, Any] = {"error": f"expected {{'text': ...}}: {exc}"}
            else:
                reply = understanding_json(text, await nlu.parse(text))
            out.write(json.dumps(reply, ensure_ascii=False) + "\n")
            out.flush()
    return count


@app.command()
def parse() -> None:
    """JSON lines {"text": ...} in, one {"text","intent","category","confidence","entities"} out.

    The path the bots use: Rasa at RASA_URL, or a Rasa server started from nlu/ for the run
    (trained first if stale), with the keyword matcher behind it.
    """
    kanal = _setup("WARNING")
    try:
        asyncio.run(parse_lines(sys.stdin, sys.stdout, RasaSettings(), kanal.data_dir))
    except rasa.RasaError as exc:
        typer.echo(f"kanal nlu parse: {exc}", err=True)
        raise typer.Exit(1) from exc


@app.command("eval")
def evaluate(
    holdout: Annotated[
        list[Path] | None,
        typer.Option(help="Rasa NLU YAML never trained on (repeat for several; default: both)."),
    ] = None,
    out_dir: Annotated[Path, typer.Option("--out", help="Where the report goes.")] = Path(
        "reports"
    ),
    ablation: Annotated[
        bool,
        typer.Option(
            help="Also train and score the pipeline without the slang normaliser (cached)."
        ),
    ] = True,
) -> None:
    """Score Rasa and the keyword matcher on the held-out split; write reports/nlu-eval.*.

    Intent accuracy, per-category precision, recall and F1, the confusion matrix, entities and
    latency, in reports/nlu-eval.md and reports/nlu-confusion.png.
    """
    kanal = _setup("WARNING")
    holdouts = holdout or [Path("nlu/eval/holdout.yml"), Path("nlu/eval/realistic.yml")]
    try:
        summary = "\n".join(
            asyncio.run(
                _evaluate(
                    path,
                    out_dir if i == 0 else out_dir / path.stem,
                    RasaSettings(),
                    kanal.data_dir,
                    ablation=ablation and i == 0,
                )
            )
            for i, path in enumerate(holdouts)
        )
    except rasa.RasaError as exc:
        typer.echo(f"kanal nlu eval: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(summary)


async def _evaluate(
    holdout: Path, out_dir: Path, settings: RasaSettings, data_dir: Path, *, ablation: bool
) -> str:
    from nlu import evaluate as ev
    from nlu.client import RasaNlu, ResilientNlu
    from nlu.fallback import FallbackNlu
    from nlu.managed import open_nlu

    examples = ev.load_holdout(holdout)
    if settings.url:
        note = f"the server at RASA_URL ({settings.url})"
    else:
        result = await asyncio.to_thread(rasa.train)
        state = "trained now" if result.trained else "cached"
        note = f"`{result.path.name}` (`nlu/config.yml`, {state})"
    async with open_nlu(settings, data_dir=data_dir, wait=True) as nlu:
        await nlu.parse("halo")  # warm-up
        main = await ev.evaluate("Rasa", nlu, examples)
    others = [await ev.evaluate("keyword matcher alone", FallbackNlu(), examples)]
    if ablation and not settings.url:
        plain = await asyncio.to_thread(write_plain_config, data_dir / "nlu-config-noslang.yml")
        model = (await asyncio.to_thread(rasa.train, config=plain, link=False)).path
        async with rasa.RasaServer(model, log_dir=data_dir) as server:
            primary = RasaNlu(server.url, settings.timeout_s)
            plain_nlu = ResilientNlu(primary, FallbackNlu())
            try:
                await plain_nlu.parse("halo")
                others.insert(
                    0, await ev.evaluate("Rasa without slang normaliser", plain_nlu, examples)
                )
            finally:
                await plain_nlu.aclose()
    png = out_dir / "nlu-confusion.png"
    md = ev.render_markdown(main, others, holdout=holdout, train_note=note, png_name=png.name)
    await asyncio.to_thread(_write_report, out_dir, md, main)
    lines = [
        f"{s.name}: intent {100 * s.intent_accuracy:.1f} %, category "
        f"{100 * s.category_accuracy:.1f} %, p50 {s.latency(0.5):.1f} ms, "
        f"p99 {s.latency(0.99):.1f} ms"
        for s in (main, *others)
    ]
    lines.append(f"report: {out_dir / 'nlu-eval.md'}, {png}")
    return "\n".join(lines)


def _write_report(out_dir: Path, markdown: str, main: Scores) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    render_confusion_png(main, out_dir / "nlu-confusion.png")
    (out_dir / "nlu-eval.md").write_text(markdown, encoding="utf-8")


def write_plain_config(path: Path) -> Path:
    """nlu/config.yml with Rasa's plain WhitespaceTokenizer instead of the slang tokenizer."""
    text = rasa.CONFIG.read_text(encoding="utf-8")
    plain = text.replace("name: kanal_slang.SlangTokenizer", "name: WhitespaceTokenizer")
    if plain == text:
        raise rasa.RasaError("nlu/config.yml has no kanal_slang.SlangTokenizer to swap out")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(plain, encoding="utf-8")
    return path


if __name__ == "__main__":
    app()


__all__ = ["app", "parse_lines", "understanding_json"]
