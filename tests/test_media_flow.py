"""A photo reaches the CRM stripped: by signed link under KANAL_PUBLIC_URL, or as bytes."""

from __future__ import annotations

import asyncio
import io
import time
from pathlib import Path

import httpx
import pytest
from PIL import Image

from bots.core.engine import Engine
from bridge.open311 import Open311Client
from bridge.sandbox import AppServer, SandboxServer
from bridge.submitter import MediaLinks, Submitter
from bridge.vault import Vault
from kanal.http import create_app
from kanal.medialinks import media_route
from kanal.messages import Expects, PhotoIn
from kanal.redis import Redis
from kanal.tasks import stop_tasks
from tests.conftest import Citizen, Clock
from tests.images import jpeg
from tests.test_engine import JAKARTA, last

PLANTED = "Budi Santoso 081311112222"


async def report_with_photo(c: Citizen) -> None:
    out = last(await c.say("pohon tumbang menutup jalan di depan sekolah"))
    if out.expects == Expects.CATEGORY:
        await c.say("ya")
    await c.share(*JAKARTA)
    await c.engine.handle(c.inbound(photos=(PhotoIn(data=jpeg(640, 480, exif_text=PLANTED)),)))
    await c.say("selesai")
    assert "diterima" in last(await c.say("kirim")).text


def assert_clean(data: bytes) -> None:
    assert PLANTED.encode() not in data and b"Budi" not in data
    with Image.open(io.BytesIO(data)) as img:
        assert img.format == "JPEG"
        assert not img.getexif()
        assert not {"exif", "xmp", "icc_profile", "comment"} & set(img.info)


@pytest.mark.parametrize("mode", ["signed_link", "bytes"])
async def test_photo_reaches_crm_without_metadata(
    engine: Engine, redis: Redis, tmp_path: Path, mode: str, clock: Clock
) -> None:
    clock.now = time.time()  # links are signed as of the report's creation
    c = Citizen(engine, user="6281200001111")
    app = create_app([media_route(engine.media, engine.keyring)])
    async with (
        AppServer(app) as kanal_http,
        SandboxServer(tmp_path / "crm.sqlite3") as crm,
        Open311Client(crm.url) as client,
    ):
        public = kanal_http.url if mode == "signed_link" else ""
        links = MediaLinks(engine.media, engine.keyring, public_url=public)
        task = asyncio.create_task(
            Submitter(redis, client, Vault(redis, engine.keyring), media=links).run()
        )
        try:
            await report_with_photo(c)
            async with asyncio.timeout(10):
                while not crm.store.list_requests():
                    await asyncio.sleep(0.05)
        finally:
            await stop_tasks([task])
        [req] = crm.store.list_requests()
        async with httpx.AsyncClient() as http:
            # What an officer sees through the CRM's own API.
            [seen] = (await http.get(f"{crm.url}/requests/{req.id}.json")).json()
            media_url = seen["media_url"]
            assert media_url
            if mode == "signed_link":
                assert media_url.startswith(f"{kanal_http.url}/media/")
            served = await http.get(media_url)
            assert served.status_code == 200
            assert_clean(served.content)
            if mode == "signed_link":
                forged = req.media_url[:-4] + (
                    "AAAA" if not req.media_url.endswith("AAAA") else "BBBB"
                )
                assert (await http.get(forged)).status_code == 404
