"""The photo upload page in a real headless browser (Debian's chromium + chromedriver, Selenium),
with JavaScript switched off as on a cheap phone, the link taken from an SMS through Kannel."""

from __future__ import annotations

import asyncio
import io
import logging
import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from bots.core.engine import Engine
from kanal import streams
from kanal.messages import Complaint
from tests.harness import PLANTED, assert_clean
from tests.images import jpeg
from tests.sms_fixtures import SmsStack, stack
from tests.test_sms import PHONE, answer, report

__all__ = ["stack"]

CHROMIUM = "/usr/bin/chromium"
DRIVER = "/usr/bin/chromedriver"
LINK = re.compile(r"Tambah foto: (\S+)")


@pytest.fixture(scope="module")
def browser() -> Iterator[webdriver.Chrome]:
    if not (Path(CHROMIUM).exists() and Path(DRIVER).exists()):
        raise RuntimeError("chromium is not installed: run `make peers`")
    for name in ("selenium", "urllib3"):  # the test's tools, whose debug lines quote URLs
        logging.getLogger(name).setLevel(logging.WARNING)
    options = Options()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--window-size=360,640", "--disable-gpu"):
        options.add_argument(arg)
    options.add_experimental_option(
        "prefs", {"profile.managed_default_content_settings.javascript": 2}
    )
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def _open(driver: webdriver.Chrome, url: str) -> str:
    driver.get(url)
    return str(driver.find_element(By.TAG_NAME, "body").text)


def _submit(driver: webdriver.Chrome, url: str, path: Path) -> str:
    driver.get(url)
    form_page = driver.find_element(By.TAG_NAME, "body")
    driver.find_element(By.NAME, "foto").send_keys(str(path))
    driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    # the answer is a new page: wait until the form's page is gone before reading it
    WebDriverWait(driver, 30).until(expected_conditions.staleness_of(form_page))
    return str(driver.find_element(By.TAG_NAME, "body").text)


async def test_citizen_adds_a_photo_from_the_sms_link(
    stack: SmsStack, engine: Engine, browser: webdriver.Chrome, tmp_path: Path, logs: io.StringIO
) -> None:
    summary = await report(stack)
    m = LINK.search(summary.text)
    assert m, summary.text
    link = m.group(1)
    token = link.rsplit("/", 1)[1]
    assert len(token) == 16 and "6281311112222" not in link and "81311112222" not in link

    photo = tmp_path / "IMG_0001.jpg"
    photo.write_bytes(jpeg(800, 600, exif_text=f"{PLANTED.name} {PLANTED.phone}"))
    page = await asyncio.to_thread(_open, browser, link)
    assert "Kirim foto laporan" in page and "hanya bisa dipakai sekali" in page
    page = await asyncio.to_thread(_submit, browser, link, photo)
    assert "Foto diterima" in page, page

    # The summary comes again by SMS, with the photo counted and a fresh link for another.
    again = await stack.mt()
    assert again.text.startswith("Foto ditambahkan. Cek laporan: Sampah"), again.text
    assert "Foto: 1 foto" in again.text
    fresh = LINK.search(again.text)
    assert fresh and fresh.group(1) != link

    # The link was single-use.
    page = await asyncio.to_thread(_open, browser, link)
    assert "Tautan sudah dipakai" in page
    async with httpx.AsyncClient() as http:  # and posting to it again (the page has no form)
        r = await http.post(link, files={"foto": ("a.jpg", photo.read_bytes(), "image/jpeg")})
    assert r.status_code == 410 and "Tautan sudah dipakai" in r.text

    # A file that is no photo: a clear page, and the link still works.
    notes = tmp_path / "catatan.jpg"
    notes.write_text("ini bukan foto")
    page = await asyncio.to_thread(_submit, browser, fresh.group(1), notes)
    assert "File bukan foto" in page
    # An expired link.
    tokens = stack.worker.tokens
    tokens.clock = lambda: time.time() + 2 * 3600
    page = await asyncio.to_thread(_open, browser, fresh.group(1))
    assert "Tautan sudah kedaluwarsa" in page
    tokens.clock = time.time

    sent = await answer(stack, PHONE, "1")
    assert "Laporan diterima" in sent.text
    page = await asyncio.to_thread(_open, browser, fresh.group(1))
    assert "Laporan sudah selesai dibuat" in page  # the report went without another photo

    [(_, fields)] = await stack.redis.xrange(streams.COMPLAINTS)
    complaint = Complaint.model_validate_json(fields["complaint"])
    [media_id] = complaint.photos
    stored = engine.media.get(media_id)
    assert stored is not None
    assert PLANTED.name.encode() not in stored and PLANTED.phone.encode() not in stored
    with Image.open(io.BytesIO(stored)) as img:
        assert img.format == "JPEG" and not img.getexif()
        assert not {"exif", "xmp", "icc_profile", "comment"} & set(img.info)
    assert_clean(logs.getvalue())
    assert token not in logs.getvalue()  # the link is a key: it stays out of the logs
