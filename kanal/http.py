"""The one ASGI app each process serves (the routes of the roles it runs)."""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route


async def healthz(_: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def metrics(_: Request) -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


def create_app(extra_routes: Sequence[BaseRoute] = ()) -> Starlette:
    return Starlette(routes=[Route("/healthz", healthz), Route("/metrics", metrics), *extra_routes])


__all__ = ["create_app"]
