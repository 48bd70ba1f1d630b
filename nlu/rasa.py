"""Managed Rasa: the Python 3.10 venv, the trained model and the server, all cached by content.

Rasa Open Source 3.6 runs on Python 3.10 only, so it lives in its own venv next to the gateway's:

- :func:`ensure_venv` builds ``$KANAL_CACHE_DIR/venv-rasa-<hash12(requirements-rasa.txt)>`` once
  (``.complete`` marks a finished install) and links ``.venv-rasa`` in the repo to it.
- :func:`train` trains ``nlu/config.yml`` on ``nlu/data/*.yml`` (plus kelurahan/kecamatan lookup
  tables generated from ``areaid``) into ``$KANAL_CACHE_DIR/models/nlu-<hash12>.tar.gz``, where
  the hash covers everything that shapes the model; an unchanged project is never retrained.
- :class:`RasaServer` runs ``rasa run --enable-api`` on 127.0.0.1 for as long as a ``with``
  block lasts, with telemetry off and Rasa's own log (which could carry user text at debug level)
  kept at WARNING in a file under ``var/``.

The cache directory defaults to ``~/.cache/kanal``; fresh clones on one machine share it.
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

import httpx
import yaml

from kanal.errors import KanalError
from kanal.logging import get_logger

log = get_logger(__name__)

NLU_DIR = Path(__file__).resolve().parent
REPO = NLU_DIR.parent
REQUIREMENTS = NLU_DIR / "requirements-rasa.txt"
CONFIG = NLU_DIR / "config.yml"
DATA_DIR = NLU_DIR / "data"
COMPONENTS_DIR = NLU_DIR / "components"
VENV_LINK = REPO / ".venv-rasa"
MODELS_LINK_DIR = NLU_DIR / "models"

# Files outside data/ and components/ whose content shapes the model.
_MODEL_INPUTS = (REQUIREMENTS, NLU_DIR / "normalize.py")

_PY310_CANDIDATES = (
    "~/.pyenv/versions/3.10*/bin/python",
    "/root/.pyenv/versions/3.10*/bin/python",
    "/usr/local/bin/python3.10",
    "/usr/bin/python3.10",
    "/opt/python/3.10*/bin/python",
)


class RasaError(KanalError):
    """The managed Rasa could not be installed, trained or started."""


def cache_dir() -> Path:
    return Path(os.environ.get("KANAL_CACHE_DIR") or Path.home() / ".cache" / "kanal").expanduser()


def hash12(*parts: bytes) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(hashlib.sha256(part).digest())
    return h.hexdigest()[:12]


def rasa_env() -> dict[str, str]:
    """Environment for Rasa processes: no telemetry, quiet TensorFlow, our components importable."""
    env = dict(os.environ)
    env.update(
        RASA_TELEMETRY_ENABLED="false",
        TF_CPP_MIN_LOG_LEVEL="3",
        LOG_LEVEL_LIBRARIES="ERROR",
        SQLALCHEMY_SILENCE_UBER_WARNING="1",
        PYTHONWARNINGS="ignore",
        PYTHONPATH=str(COMPONENTS_DIR),
        MPLCONFIGDIR=str(cache_dir() / "mpl"),
    )
    env.pop("VIRTUAL_ENV", None)
    return env


# ---- the venv ------------------------------------------------------------------------------


def venv_dir() -> Path:
    """``venv-rasa-<first 12 hex of sha256(nlu/requirements-rasa.txt)>`` in the cache."""
    return cache_dir() / f"venv-rasa-{hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()[:12]}"


def find_python310() -> str | None:
    """A working Python 3.10: ``$KANAL_PYTHON310``, ``python3.10`` on PATH, or pyenv's."""
    candidates: list[str] = []
    explicit = os.environ.get("KANAL_PYTHON310")
    if explicit:
        candidates.append(explicit)
    on_path = shutil.which("python3.10")
    if on_path:
        candidates.append(on_path)
    for pattern in _PY310_CANDIDATES:
        candidates.extend(sorted(glob.glob(os.path.expanduser(pattern)), reverse=True))
    for candidate in candidates:
        # A pyenv shim is on PATH even when no 3.10 is selected: ask the interpreter itself.
        try:
            probe = subprocess.run(
                [candidate, "-c", "import sys; print(sys.version_info[:2] == (3, 10))"],
                capture_output=True,
                text=True,
                check=False,
                timeout=30,
            )
        except (OSError, subprocess.TimeoutExpired):
            continue
        if probe.returncode == 0 and probe.stdout.strip() == "True":
            return candidate
    return None


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock shared by every clone on this machine (make test and CI may overlap)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _link(link: Path, target: Path) -> None:
    if link.is_symlink() and Path(os.readlink(link)) == target:
        return
    if link.is_symlink() or link.is_file():
        link.unlink()
    elif link.exists():
        shutil.rmtree(link)
    tmp = link.with_name(f".{link.name}.{os.getpid()}")
    tmp.symlink_to(target)
    tmp.replace(link)


def ensure_venv(link: bool = True, cancel: threading.Event | None = None) -> Path:
    """The Rasa venv's python, installing it first if this requirements file is new (~3 min)."""
    target = venv_dir()
    if not (target / ".complete").exists():
        with _locked(cache_dir() / ".venv-rasa.lock"):
            if not (target / ".complete").exists():
                _build_venv(target, cancel)
    if link:
        _link(VENV_LINK, target)
    return target / "bin" / "python"


def _build_venv(target: Path, cancel: threading.Event | None = None) -> None:
    python = find_python310()
    if python is None:
        raise RasaError(
            "Rasa 3.6 needs Python 3.10 and none was found (tried python3.10 on PATH and "
            "~/.pyenv/versions/3.10*). Install one (e.g. `pyenv install 3.10.13`; Debian "
            "bookworm has no python3.10 package) or point KANAL_PYTHON310 at it."
        )
    if target.exists():
        shutil.rmtree(target)
    log.info("rasa_venv_building", venv=target.name)
    started = time.monotonic()
    _run([python, "-m", "venv", str(target)], "create the Rasa venv", cancel=cancel)
    pip = [str(target / "bin" / "python"), "-m", "pip", "install", "-q"]
    _run([*pip, "-r", str(REQUIREMENTS)], "install nlu/requirements-rasa.txt", cancel=cancel)
    (target / ".complete").touch()
    log.info("rasa_venv_built", venv=target.name, seconds=round(time.monotonic() - started, 1))


def _run(
    cmd: Sequence[str],
    what: str,
    *,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    cancel: threading.Event | None = None,
) -> None:
    """Run a command to completion; kill it (and its children) if ``cancel`` is set meanwhile."""
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen(
            cmd,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            while proc.poll() is None:
                if cancel is not None and cancel.wait(0.5):
                    raise RasaError(f"cancelled: {what}")
                if cancel is None:
                    proc.wait()
        finally:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        if proc.returncode != 0:
            out.seek(0)
            text = out.read().decode("utf-8", "replace")
            tail = "\n".join(text.strip().splitlines()[-25:])
            raise RasaError(f"could not {what} (exit {proc.returncode}):\n{tail}")


# ---- the model -----------------------------------------------------------------------------


def area_lookups() -> str:
    """Rasa lookup tables of DKI Jakarta's kelurahan and kecamatan names, from ``areaid``."""
    from areaid import buka_data

    kelurahan: set[str] = set()
    kecamatan: set[str] = set()
    for prov in buka_data("daerah khusus ibukota jakarta"):
        for kab in prov["kabupaten"]:
            for kec in kab["kecamatan"]:
                kecamatan.add(str(kec["kec"]).strip().title())
                for kel in kec["kelurahan"]:
                    kelurahan.add(str(kel["kelu"]).strip().title())
    doc = {
        "version": "3.1",
        "nlu": [
            {"lookup": "kelurahan", "examples": "".join(f"- {n}\n" for n in sorted(kelurahan))},
            {"lookup": "kecamatan", "examples": "".join(f"- {n}\n" for n in sorted(kecamatan))},
        ],
    }
    return "# Generated by nlu/rasa.py from areaid; do not edit.\n" + yaml.safe_dump(
        doc, allow_unicode=True, sort_keys=False
    )


def training_inputs(config: Path = CONFIG) -> dict[str, bytes]:
    """Every file that shapes the model, by the name it gets in the training directory."""
    files: dict[str, bytes] = {"config.yml": config.read_bytes()}
    for path in sorted(DATA_DIR.glob("*.yml")):
        files[f"data/{path.name}"] = path.read_bytes()
    files["data/_areas.yml"] = area_lookups().encode()
    for path in sorted(COMPONENTS_DIR.glob("*.py")):
        files[f"components/{path.name}"] = path.read_bytes()
    for path in _MODEL_INPUTS:
        files[f"inputs/{path.name}"] = path.read_bytes()
    return files


def model_hash(config: Path = CONFIG) -> str:
    files = training_inputs(config)
    return hash12(*(name.encode() + b"\0" + files[name] for name in sorted(files)))


def model_path(config: Path = CONFIG) -> Path:
    return cache_dir() / "models" / f"nlu-{model_hash(config)}.tar.gz"


@dataclass(frozen=True)
class TrainResult:
    path: Path
    trained: bool  # False: the cached model was current
    seconds: float


def train(
    force: bool = False,
    config: Path = CONFIG,
    out: Path | None = None,
    link: bool = True,
    cancel: threading.Event | None = None,
) -> TrainResult:
    """Train unless the cached model for this exact project already exists (blocking).

    ``force`` trains from scratch even so; ``out`` puts the model there instead of the cache
    (a benchmark that must not replace the cached model).
    """
    python = ensure_venv(cancel=cancel)
    started = time.monotonic()
    target = out or model_path(config)
    trained = False
    if force or not target.exists():
        # One lock per model: a clone training the same data waits and then reuses the result.
        with _locked(target.parent / f".{target.name}.lock"):
            if force or not target.exists():
                _train_into(python, config, target, cancel)
                trained = True
    if trained and out is None:
        _prune(target.parent, keep=target)
    if link and out is None:
        MODELS_LINK_DIR.mkdir(exist_ok=True)
        for old in MODELS_LINK_DIR.glob("nlu-*.tar.gz"):
            if old.is_symlink() and old.name != target.name:
                old.unlink()
        _link(MODELS_LINK_DIR / target.name, target)
    return TrainResult(target, trained, round(time.monotonic() - started, 2))


def _prune(models: Path, keep: Path, count: int = 4) -> None:
    """Keep the ``count`` newest cached models (~100 MB each), and always ``keep``."""
    cached = sorted(models.glob("nlu-*.tar.gz"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in cached[count:]:
        if old != keep:
            with contextlib.suppress(OSError):
                old.unlink()


def _train_into(
    python: Path, config: Path, target: Path, cancel: threading.Event | None = None
) -> None:
    files = training_inputs(config)
    target.parent.mkdir(parents=True, exist_ok=True)
    log.info("nlu_training", model=target.name)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="kanal-nlu-train-") as tmp:
        work = Path(tmp)
        for name, content in files.items():
            if name.startswith(("config", "data/")):
                (work / name).parent.mkdir(parents=True, exist_ok=True)
                (work / name).write_bytes(content)
        cmd = [
            str(python),
            "-m",
            "rasa",
            "train",
            "nlu",
            "--config",
            "config.yml",
            "--nlu",
            "data",
            "--out",
            "models",
            "--fixed-model-name",
            "nlu",
            "--quiet",
        ]
        _run(cmd, "train the Rasa model", cwd=work, env=rasa_env(), cancel=cancel)
        built = work / "models" / "nlu.tar.gz"
        if not built.exists():
            raise RasaError("rasa train finished without writing a model")
        staged = target.with_name(f".{target.name}.{os.getpid()}")
        shutil.copyfile(built, staged)
        staged.replace(target)
    log.info("nlu_trained", model=target.name, seconds=round(time.monotonic() - started, 1))


# ---- the server ----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RasaServer:
    """``rasa run --enable-api`` on 127.0.0.1 for the duration of a ``with`` block.

    ``with RasaServer(model) as srv:`` (or ``async with``) returns once ``GET /status`` reports
    the model loaded; ``srv.url`` is the server root (known from the start, so a client can be
    pointed at it while the server is still loading). Leaving stops it: SIGTERM, then SIGKILL.
    :meth:`stop` may be called from another thread while :meth:`start` is still installing,
    training or loading: that start is cancelled.
    """

    def __init__(
        self,
        model: Path | None = None,
        *,
        port: int = 0,
        host: str = "127.0.0.1",
        log_dir: Path = Path("var"),
        start_timeout_s: float = 180.0,
    ) -> None:
        self.model = model
        self.host = host  # where it listens; this process reaches it on 127.0.0.1
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_file = log_dir / "rasa-server.log"
        self.start_timeout_s = start_timeout_s
        self.proc: subprocess.Popen[bytes] | None = None
        self.cold_start_s = 0.0
        self._cancel = threading.Event()
        self._lock = threading.Lock()

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    @property
    def stopping(self) -> bool:
        return self._cancel.is_set()

    def start(self) -> None:
        """Install, train (if stale), start and wait until the model is loaded. Blocking."""
        self._cancel.clear()
        try:
            python = ensure_venv(cancel=self._cancel)
            model = self.model or train(cancel=self._cancel).path
            self.log_file.parent.mkdir(parents=True, exist_ok=True)
            cmd = [
                str(python),
                "-m",
                "rasa",
                "run",
                "--enable-api",
                "-m",
                str(model),
                "-i",
                self.host,
                "-p",
                str(self.port),
                "--quiet",  # WARNING and up only: Rasa logs message text at DEBUG
                "--log-file",
                str(self.log_file.resolve()),
            ]
            started = time.monotonic()
            with self._lock:
                if self._cancel.is_set():
                    raise RasaError("rasa start cancelled")
                with open(self.log_file, "ab") as out:
                    self.proc = subprocess.Popen(
                        cmd,
                        cwd=REPO,
                        env=rasa_env(),
                        stdin=subprocess.DEVNULL,
                        stdout=out,
                        stderr=out,
                        start_new_session=True,
                    )
                proc = self.proc
            log.info("rasa_starting", pid=proc.pid, port=self.port)
            self._wait_ready(proc, started)
        except BaseException:
            self.stop()
            raise
        self.cold_start_s = round(time.monotonic() - started, 2)
        log.info("rasa_ready", pid=proc.pid, port=self.port, seconds=self.cold_start_s)

    def _wait_ready(self, proc: subprocess.Popen[bytes], started: float) -> None:
        with httpx.Client(timeout=2.0, trust_env=False) as client:
            while time.monotonic() - started < self.start_timeout_s:
                if self._cancel.is_set():
                    raise RasaError("rasa start cancelled")
                code = proc.poll()
                if code is not None:
                    raise RasaError(f"rasa run exited with {code}; see {self.log_file}")
                with contextlib.suppress(httpx.HTTPError, ValueError):
                    r = client.get(f"{self.url}/status")
                    if r.status_code == 200 and r.json().get("model_file"):
                        return
                self._cancel.wait(0.25)
        raise RasaError(f"rasa run not ready after {self.start_timeout_s:.0f} s")

    def stop(self, grace_s: float = 10.0) -> None:
        self._cancel.set()
        with self._lock:
            proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.info("rasa_stopped", pid=proc.pid)

    def kill(self) -> None:
        """SIGKILL at once, as a crash would (tests)."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def rss_mb(self) -> float:
        """Resident memory of the server process, in MB."""
        if self.proc is None:
            return 0.0
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
        return 0.0

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> Self:
        import asyncio

        await asyncio.to_thread(self.start)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        import asyncio

        await asyncio.to_thread(self.stop)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m nlu.rasa venv|train|path`` for the Makefile (before `kanal nlu` is wired)."""
    args = list(sys.argv[1:] if argv is None else argv)
    what = args[0] if args else "path"
    if what == "venv":
        print(ensure_venv())
    elif what == "train":
        result = train(force="--force" in args)
        state = "trained" if result.trained else "cached"
        print(f"{result.path} ({state}, {result.seconds:.1f} s)")
    elif what == "path":
        print(model_path())
    else:
        print("usage: python -m nlu.rasa venv|train [--force]|path", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())


__all__ = [
    "CONFIG",
    "RasaError",
    "RasaServer",
    "TrainResult",
    "cache_dir",
    "ensure_venv",
    "find_python310",
    "model_hash",
    "model_path",
    "train",
]
