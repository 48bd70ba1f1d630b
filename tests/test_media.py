"""Photos: only real images in, GPS read, every byte of metadata out, served by signed link.

Acceptance: the photo served at ``media_url`` has no metadata. Everything here runs against
real peers: Pillow-made files, a real uvicorn server, moto's S3 server over HTTP, and the
sandbox CRM for the multipart upload.
"""

from __future__ import annotations

import io
import os
import struct
import time
import zipfile
import zlib
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import httpx
import pytest
from moto.server import ThreadedMotoServer
from PIL import ExifTags, Image, TiffImagePlugin

from bridge.open311 import NewServiceRequest, Open311Client
from bridge.sandbox import AppServer, SandboxServer, SandboxStore
from kanal.errors import ConfigError, NotAnImage, PermanentPeerError, TemporaryPeerError
from kanal.http import create_app
from kanal.keys import Keyring
from kanal.media import MAX_BYTES, MAX_SIDE, CleanImage, clean_image
from kanal.medialinks import MAX_CACHE_S, media_route, sign_media_url, verify_token
from kanal.mediastore import (
    LocalMediaStore,
    S3MediaStore,
    StoredMedia,
    media_store_from_settings,
)
from kanal.mediastore import LocalMediaStore as MediaStore
from kanal.settings import KanalSettings
from tests.conftest import Clock
from tests.images import jpeg

# --- images made for the tests -----------------------------------------------------------------

MONAS = (-6.1754, 106.8272)
PLANTED = {
    "artist": "Budi Santoso",
    "serial": "SN-88231977",
    "phone": "0812-3456-7890",
    "xmp": "xmp-creator-siti",
    "comment": "komentar-rahasia",
    "icc": "icc-desc-rahasia",
}
PUBLIC_URL = "https://kanal.example.go.id"


def gps_exif(
    lat: tuple[float, ...] | None = (6.0, 10.0, 31.44),
    lat_ref: str | None = "S",
    lon: tuple[float, ...] | None = (106.0, 49.0, 37.92),
    lon_ref: str | None = "E",
) -> Image.Exif:
    """EXIF with a GPSInfo IFD (Monas by default) and personal data planted around it."""
    exif = Image.Exif()
    exif[ExifTags.Base.Artist] = PLANTED["artist"]
    exif[ExifTags.Base.ImageDescription] = f"Hubungi saya di {PLANTED['phone']}"
    exif.get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.BodySerialNumber] = PLANTED["serial"]
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    for tag, value in (
        (ExifTags.GPS.GPSLatitudeRef, lat_ref),
        (ExifTags.GPS.GPSLatitude, lat),
        (ExifTags.GPS.GPSLongitudeRef, lon_ref),
        (ExifTags.GPS.GPSLongitude, lon),
    ):
        if value is not None:
            gps[tag] = value
    return exif


def camera_jpeg(exif: Image.Exif | bytes | None = None, size: tuple[int, int] = (64, 48)) -> bytes:
    """A JPEG carrying EXIF, XMP, an ICC profile and a comment, as a phone might send."""
    out = io.BytesIO()
    Image.new("RGB", size, (180, 40, 40)).save(
        out,
        format="JPEG",
        exif=gps_exif() if exif is None else exif,
        xmp=f'<x:xmpmeta xmlns:x="adobe:ns:meta/"><dc:creator>{PLANTED["xmp"]}</dc:creator>'
        "</x:xmpmeta>".encode(),
        comment=PLANTED["comment"],
        icc_profile=b"\x00" * 16 + PLANTED["icc"].encode() + b"\x00" * 16,
    )
    return out.getvalue()


def encode(img: Image.Image, fmt: str, **params: object) -> bytes:
    out = io.BytesIO()
    img.save(out, format=fmt, **params)
    return out.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A tiny PNG that declares ``width``×``height`` pixels: a decompression bomb's shape."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1024, 9)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def png16_rgb(
    width: int = 8, height: int = 8, rgb16: tuple[int, int, int] = (65535, 0, 0)
) -> bytes:
    """A 16-bit-per-channel RGB PNG, written by hand (Pillow cannot write one)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    row = b"\x00" + struct.pack(">HHH", *rgb16) * width
    ihdr = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(row * height))
        + chunk(b"IEND", b"")
    )


def animated_gif() -> bytes:
    frames = [Image.new("RGB", (20, 20), colour) for colour in ((0, 0, 255), (255, 255, 0))]
    return encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)


def noisy_jpeg(size: tuple[int, int] = (256, 256)) -> bytes:
    return encode(Image.frombytes("RGB", size, os.urandom(size[0] * size[1] * 3)), "JPEG")


def a_zip() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("foto.jpg", jpeg())
    return out.getvalue()


def assert_no_metadata(data: bytes) -> None:
    """What the acceptance criterion means, checked on the bytes themselves."""
    with Image.open(io.BytesIO(data)) as img:
        assert img.format == "JPEG"
        leaked = {"exif", "xmp", "XML:com.adobe.xmp", "icc_profile", "comment", "photoshop"}
        assert not leaked & set(img.info), img.info.keys()
        assert dict(img.getexif()) == {}
        assert {marker for marker, _ in img.applist} <= {"APP0"}  # JFIF only: no APP1/2/13
    for value in PLANTED.values():
        assert value.encode() not in data, value
    assert b"Exif" not in data and b"http://ns.adobe.com/xap" not in data


def pixel(data: bytes, xy: tuple[int, int]) -> tuple[int, ...]:
    with Image.open(io.BytesIO(data)) as img:
        value = img.convert("RGB").getpixel(xy)
    assert isinstance(value, tuple)
    return value


def near(got: tuple[int, ...], want: tuple[int, int, int], tolerance: int = 12) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(got, want, strict=True))


# --- clean_image ---------------------------------------------------------------------------------


def test_gps_is_read_and_all_metadata_stripped() -> None:
    raw = camera_jpeg()
    for value in PLANTED.values():
        assert value.encode() in raw  # planted where a phone would put it
    img = clean_image(raw)
    assert img.gps is not None
    assert img.gps == pytest.approx(MONAS, abs=1e-6)
    assert_no_metadata(img.data)
    assert (img.width, img.height) == (64, 48)


@dataclass(frozen=True)
class GpsCase:
    label: str
    exif: Callable[[], Image.Exif | bytes]
    want: tuple[float, float] | None


GPS_CASES = [
    GpsCase(
        "north west",
        lambda: gps_exif((40.0, 42.0, 46.08), "N", (74.0, 0.0, 21.6), "W"),
        (40.7128, -74.006),
    ),
    GpsCase("decimal minutes", lambda: gps_exif((6.0, 10.524), "S", (106.0, 49.632), "E"), MONAS),
    GpsCase("no GPS at all", lambda: Image.Exif(), None),
    GpsCase("latitude only", lambda: gps_exif(lon=None, lon_ref=None), None),
    GpsCase("no hemisphere", lambda: gps_exif(lat_ref=None), None),
    GpsCase("bad hemisphere", lambda: gps_exif(lat_ref="X"), None),
    GpsCase("latitude out of range", lambda: gps_exif(lat=(95.0, 0.0, 0.0)), None),
    GpsCase("minutes out of range", lambda: gps_exif(lat=(6.0, 75.0, 0.0)), None),
    GpsCase("null island", lambda: gps_exif((0.0, 0.0, 0.0), "N", (0.0, 0.0, 0.0), "E"), None),
    GpsCase(
        "zero denominator",
        lambda: gps_exif(lat=(TiffImagePlugin.IFDRational(6, 0), 10.0, 31.44)),
        None,
    ),
    GpsCase("truncated EXIF", lambda: gps_exif().tobytes()[:40], None),
    GpsCase("garbage EXIF", lambda: b"Exif\x00\x00II*\x00\xff\xff\xff\xff" + os.urandom(40), None),
]


@pytest.mark.parametrize("case", GPS_CASES, ids=lambda c: c.label)
def test_gps_from_exif(case: GpsCase) -> None:
    img = clean_image(camera_jpeg(case.exif()))  # a bad EXIF never costs the photo
    if case.want is None:
        assert img.gps is None
    else:
        assert img.gps == pytest.approx(case.want, abs=1e-6)
    assert dict(Image.open(io.BytesIO(img.data)).getexif()) == {}


def test_orientation_is_applied_then_dropped() -> None:
    # Left half red, right half blue, stored sideways: Orientation 6 means "rotate 90° clockwise".
    sideways = Image.new("RGB", (60, 30), (255, 0, 0))
    sideways.paste((0, 0, 255), (30, 0, 60, 30))
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6
    img = clean_image(encode(sideways, "JPEG", exif=exif))
    assert (img.width, img.height) == (30, 60)
    assert near(pixel(img.data, (15, 5)), (255, 0, 0))  # what was on the left is now on top
    assert near(pixel(img.data, (15, 55)), (0, 0, 255))
    assert_no_metadata(img.data)


@pytest.mark.parametrize(
    ("size", "want"),
    [
        ((4000, 1000), (MAX_SIDE, 512)),
        ((1000, 4096), (500, MAX_SIDE)),
        ((2048, 2048), (2048, 2048)),
    ],
    ids=["wide", "tall", "at the limit"],
)
def test_longest_side_is_bounded(size: tuple[int, int], want: tuple[int, int]) -> None:
    img = clean_image(encode(Image.new("RGB", size, (10, 120, 10)), "PNG"))
    assert (img.width, img.height) == want
    with Image.open(io.BytesIO(img.data)) as out:
        assert out.size == want


@dataclass(frozen=True)
class FormatCase:
    label: str
    make: Callable[[], bytes]
    want: tuple[int, int, int]  # the colour at (2, 2) after cleaning


def _transparent_png() -> bytes:
    img = Image.new("RGBA", (16, 16), (0, 0, 0, 0))  # fully transparent black
    return encode(img, "PNG")


def _palette_with_transparency() -> bytes:
    img = Image.new("P", (16, 16), 1)
    img.putpalette([255, 0, 0, 0, 0, 0] + [0] * 762)
    return encode(img, "PNG", transparency=1)


FORMAT_CASES = [
    FormatCase("PNG with alpha, flattened on white", _transparent_png, (255, 255, 255)),
    FormatCase("palette PNG with transparency", _palette_with_transparency, (255, 255, 255)),
    FormatCase(
        "palette GIF",
        lambda: encode(Image.new("RGB", (16, 16), (0, 200, 0)).convert("P"), "GIF"),
        (0, 200, 0),
    ),
    FormatCase(
        "CMYK JPEG",
        lambda: encode(Image.new("CMYK", (16, 16), (0, 255, 255, 0)), "JPEG"),
        (255, 0, 0),
    ),
    FormatCase("animated GIF, first frame", animated_gif, (0, 0, 255)),
    FormatCase(
        "16-bit grey PNG",
        lambda: encode(Image.new("I;16", (16, 16), 40000), "PNG"),
        (156, 156, 156),
    ),
    FormatCase("16-bit RGB PNG", png16_rgb, (255, 0, 0)),
    FormatCase(
        "grey with alpha", lambda: encode(Image.new("LA", (16, 16), (90, 255)), "PNG"), (90, 90, 90)
    ),
    FormatCase("1-bit", lambda: encode(Image.new("1", (16, 16), 1), "PNG"), (255, 255, 255)),
    FormatCase(
        "WebP",
        lambda: encode(Image.new("RGB", (16, 16), (20, 20, 200)), "WEBP", lossless=True),
        (20, 20, 200),
    ),
    FormatCase(
        "BMP", lambda: encode(Image.new("RGB", (16, 16), (200, 100, 0)), "BMP"), (200, 100, 0)
    ),
    FormatCase(
        "TIFF", lambda: encode(Image.new("RGB", (16, 16), (50, 60, 70)), "TIFF"), (50, 60, 70)
    ),
]


@pytest.mark.parametrize("case", FORMAT_CASES, ids=lambda c: c.label)
def test_image_kinds_become_plain_rgb_jpeg(case: FormatCase) -> None:
    img = clean_image(case.make())
    with Image.open(io.BytesIO(img.data)) as out:
        assert (out.format, out.mode) == ("JPEG", "RGB")
    assert near(pixel(img.data, (2, 2)), case.want), pixel(img.data, (2, 2))
    assert_no_metadata(img.data)


def test_png_text_and_exif_chunks_are_dropped() -> None:
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("Author", PLANTED["artist"])
    info.add_itxt("Description", PLANTED["phone"])
    raw = encode(Image.new("RGB", (16, 16)), "PNG", pnginfo=info, exif=gps_exif())
    img = clean_image(raw)
    assert img.gps == pytest.approx(MONAS, abs=1e-6)  # PNG eXIf is read too
    assert_no_metadata(img.data)


NOT_IMAGES = {
    "empty": b"",
    "PDF": b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n",
    "HTML": b"<!doctype html><html><body><img src=x onerror=alert(1)></body></html>",
    "plain text": b"Ada sampah menumpuk di Jl. Sabang",
    "zip": a_zip(),
    "truncated JPEG": noisy_jpeg()[:3000],
    "JPEG header only": noisy_jpeg()[:200],
    "EPS (needs Ghostscript)": b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n",
    "SVG": b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>',
    "over the size limit": b"\xff\xd8" + b"\x00" * MAX_BYTES,
}


@pytest.mark.parametrize("raw", NOT_IMAGES.values(), ids=NOT_IMAGES.keys())
def test_anything_else_is_refused(raw: bytes) -> None:
    with pytest.raises(NotAnImage):
        clean_image(raw)


@pytest.mark.parametrize(
    "size", [(50_000, 50_000), (7_000, 6_000)], ids=["far over", "just over the limit"]
)
def test_decompression_bomb_is_refused_quickly(size: tuple[int, int]) -> None:
    raw = png_header_only(*size)
    assert len(raw) < 200
    started = time.perf_counter()
    with pytest.raises(NotAnImage, match="pixels"):
        clean_image(raw)
    assert time.perf_counter() - started < 0.5


def test_the_same_photo_gets_the_same_id() -> None:
    raw = camera_jpeg()
    first, second = clean_image(raw), clean_image(raw)
    assert first.media_id == second.media_id and len(first.media_id) == 32
    assert clean_image(jpeg(65, 48)).media_id != first.media_id


# --- stores --------------------------------------------------------------------------------------

BAD_IDS = [
    "../../etc/passwd",
    "..",
    "",
    "0" * 31,
    "0" * 33,
    "A" * 32,
    "g" * 32,
    "0" * 30 + "/x",
    "%2e%2e%2f" + "0" * 23,
    "0" * 31 + "\x00",
]


def test_local_store_round_trip(tmp_path: Path) -> None:
    store = LocalMediaStore(tmp_path / "media")
    stored = store.put(camera_jpeg())
    assert isinstance(stored, StoredMedia)
    assert stored.gps == pytest.approx(MONAS, abs=1e-6)
    data = store.get(stored.media_id)
    assert data is not None
    assert data == clean_image(camera_jpeg()).data
    assert_no_metadata(data)
    assert store.put(camera_jpeg()).media_id == stored.media_id  # stored once
    assert sorted(p.name for p in (tmp_path / "media").iterdir()) == [f"{stored.media_id}.jpg"]
    store.delete(stored.media_id)
    store.delete(stored.media_id)  # already gone: fine
    assert store.get(stored.media_id) is None


def test_local_store_refuses_non_images_and_keeps_nothing(tmp_path: Path) -> None:
    store = LocalMediaStore(tmp_path)
    with pytest.raises(NotAnImage):
        store.put(NOT_IMAGES["HTML"])
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("bad", BAD_IDS)
def test_local_store_refuses_ids_that_are_not_ours(tmp_path: Path, bad: str) -> None:
    secret = tmp_path / "secret.jpg"
    secret.write_bytes(b"not yours")
    store = LocalMediaStore(tmp_path / "media")
    assert store.get(bad) is None
    with pytest.raises(ValueError):
        store.delete(bad)
    assert secret.exists()


def test_old_import_still_works(tmp_path: Path) -> None:
    assert MediaStore is LocalMediaStore
    assert isinstance(MediaStore(tmp_path).put(jpeg()), StoredMedia)
    assert isinstance(clean_image(jpeg()), CleanImage)


def test_store_from_settings(tmp_path: Path) -> None:
    local = media_store_from_settings(KanalSettings(data_dir=tmp_path))
    assert isinstance(local, LocalMediaStore) and local.root == tmp_path / "media"
    s3 = media_store_from_settings(
        KanalSettings(
            data_dir=tmp_path,
            media_s3_bucket="kanal-foto",
            media_s3_endpoint_url="http://127.0.0.1:9",
            media_s3_access_key="k",
            media_s3_secret_key="s",
            media_s3_region="ap-southeast-3",
        )
    )
    assert isinstance(s3, S3MediaStore) and s3.bucket == "kanal-foto"


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def s3_store(endpoint: str, bucket: str, **kw: str) -> S3MediaStore:
    return S3MediaStore(
        bucket,
        endpoint_url=endpoint,
        access_key="kanal-test",
        secret_key="kanal-test-secret",
        region="ap-southeast-3",
        **kw,
    )


def make_bucket(endpoint: str, bucket: str) -> None:
    s3 = boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id="kanal-test",
        aws_secret_access_key="kanal-test-secret",
        region_name="ap-southeast-3",
    )
    s3.create_bucket(
        Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "ap-southeast-3"}
    )
    s3.close()


def test_s3_store_round_trip(moto_endpoint: str) -> None:
    make_bucket(moto_endpoint, "kanal-foto")
    store = s3_store(moto_endpoint, "kanal-foto", prefix="jakarta/")
    stored = store.put(camera_jpeg())
    assert stored.gps == pytest.approx(MONAS, abs=1e-6)
    data = store.get(stored.media_id)
    assert data == clean_image(camera_jpeg()).data
    assert data is not None
    assert_no_metadata(data)
    head = store._s3.head_object(Bucket="kanal-foto", Key=f"jakarta/{stored.media_id}.jpg")
    assert head["ContentType"] == "image/jpeg"
    assert store.get("0" * 32) is None
    for bad in BAD_IDS:
        assert store.get(bad) is None
        with pytest.raises(ValueError):
            store.delete(bad)
    store.delete(stored.media_id)
    assert store.get(stored.media_id) is None
    with pytest.raises(NotAnImage):
        store.put(NOT_IMAGES["PDF"])


def test_s3_store_errors_say_whether_to_retry(moto_endpoint: str) -> None:
    with pytest.raises(PermanentPeerError):
        s3_store(moto_endpoint, "no-such-bucket").put(jpeg())
    unreachable = s3_store("http://127.0.0.1:9", "kanal-foto")  # discard port: nothing listens
    with pytest.raises(TemporaryPeerError):
        unreachable.get("0" * 32)


def test_s3_store_from_settings(moto_endpoint: str, tmp_path: Path) -> None:
    make_bucket(moto_endpoint, "kanal-settings")
    store = media_store_from_settings(
        KanalSettings(
            data_dir=tmp_path,
            media_s3_bucket="kanal-settings",
            media_s3_endpoint_url=moto_endpoint,
            media_s3_access_key="kanal-test",
            media_s3_secret_key="kanal-test-secret",
            media_s3_region="ap-southeast-3",
        )
    )
    stored = store.put(jpeg())
    assert store.get(stored.media_id) == clean_image(jpeg()).data
    assert not (tmp_path / "media").exists()


# --- signed links --------------------------------------------------------------------------------

MEDIA_ID = "0123456789abcdef0123456789abcdef"
NOW = 1_790_000_000.0


def token_of_url(url: str) -> str:
    return url.rsplit("/", 1)[1]


def token_of(url: str) -> str:
    assert url.startswith(f"{PUBLIC_URL}/media/")
    return token_of_url(url)


def test_signed_url_round_trip(keyring: Keyring) -> None:
    url = sign_media_url(PUBLIC_URL + "/", MEDIA_ID, keyring, ttl_s=3600, now=NOW)
    token = token_of(url)
    assert len(token) == 60 and "=" not in token
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert MEDIA_ID not in url
    assert verify_token(token, keyring, NOW) == MEDIA_ID
    assert verify_token(token, keyring, NOW + 3599) == MEDIA_ID
    other = token_of(sign_media_url(PUBLIC_URL, "f" * 32, keyring, ttl_s=3600, now=NOW))
    assert other != token and verify_token(other, keyring, NOW) == "f" * 32


def test_expired_token_is_refused(keyring: Keyring) -> None:
    token = token_of(sign_media_url(PUBLIC_URL, MEDIA_ID, keyring, ttl_s=3600, now=NOW))
    assert verify_token(token, keyring, NOW + 3600) is None
    assert verify_token(token, keyring, NOW + 10**7) is None


def test_any_changed_character_invalidates_the_token(keyring: Keyring) -> None:
    token = token_of(sign_media_url(PUBLIC_URL, MEDIA_ID, keyring, ttl_s=3600, now=NOW))
    for i, char in enumerate(token):
        for replacement in {"A", "B", "Q", "g", "w", "-", "_", "0"} - {char}:
            forged = token[:i] + replacement + token[i + 1 :]
            assert verify_token(forged, keyring, NOW) is None, (i, replacement)


@pytest.mark.parametrize(
    "forge",
    [
        lambda t: t[:-1],
        lambda t: t + "A",
        lambda t: t + "=",
        lambda t: t[:30] + "+" + t[31:],
        lambda t: t[:30] + "/" + t[31:],
        lambda t: t[:30] + "." + t[31:],
        lambda t: t[:30] + "é" + t[31:],
        lambda t: "",
        lambda t: "A" * 60,
        lambda t: "../" * 20,
    ],
    ids=["short", "long", "padded", "plus", "slash", "dot", "non-ascii", "empty", "zeros", "dots"],
)
def test_malformed_tokens_are_refused(keyring: Keyring, forge: Callable[[str], str]) -> None:
    token = token_of(sign_media_url(PUBLIC_URL, MEDIA_ID, keyring, ttl_s=3600, now=NOW))
    assert verify_token(forge(token), keyring, NOW) is None


def test_another_key_cannot_verify(keyring: Keyring) -> None:
    token = token_of(sign_media_url(PUBLIC_URL, MEDIA_ID, keyring, ttl_s=3600, now=NOW))
    assert verify_token(token, Keyring(["someone-else"]), NOW) is None


def test_signing_needs_a_public_url_an_id_and_a_lifetime(keyring: Keyring) -> None:
    with pytest.raises(ConfigError):
        sign_media_url("", MEDIA_ID, keyring, ttl_s=3600, now=NOW)
    with pytest.raises(ValueError):
        sign_media_url(PUBLIC_URL, "../etc", keyring, ttl_s=3600, now=NOW)
    with pytest.raises(ValueError):
        sign_media_url(PUBLIC_URL, MEDIA_ID, keyring, ttl_s=0, now=NOW)


# --- GET /media/{token} over HTTP ----------------------------------------------------------------


@pytest.fixture
async def served(
    tmp_path: Path, keyring: Keyring, clock: Clock
) -> AsyncIterator[tuple[AppServer, LocalMediaStore]]:
    store = LocalMediaStore(tmp_path / "media")
    async with AppServer(create_app([media_route(store, keyring, clock)])) as server:
        yield server, store


async def test_media_route_serves_the_photo_without_metadata(
    served: tuple[AppServer, LocalMediaStore],
    keyring: Keyring,
    clock: Clock,
    logs: io.StringIO,
) -> None:
    server, store = served
    stored = store.put(camera_jpeg())
    url = sign_media_url(server.url, stored.media_id, keyring, ttl_s=30 * 86400, now=clock())
    async with httpx.AsyncClient(timeout=5) as http:
        response = await http.get(url)
        assert response.status_code == 200
        assert response.headers["content-type"] == "image/jpeg"
        assert response.headers["cache-control"] == f"private, max-age={MAX_CACHE_S}"
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.content == store.get(stored.media_id)
        assert_no_metadata(response.content)
        clock.advance(30 * 86400 - 60)
        late = await http.get(url)
        assert late.status_code == 200 and late.headers["cache-control"] == "private, max-age=60"
    assert token_of_url(url) not in logs.getvalue()


async def test_media_route_answers_404_alike_for_forged_expired_and_missing(
    served: tuple[AppServer, LocalMediaStore],
    keyring: Keyring,
    clock: Clock,
    logs: io.StringIO,
) -> None:
    server, store = served
    stored = store.put(jpeg())
    good = sign_media_url(server.url, stored.media_id, keyring, ttl_s=3600, now=clock())
    token = token_of_url(good)
    forged = f"{server.url}/media/{token[:-2]}{'AB' if token[-2:] != 'AB' else 'CD'}"
    other_key = sign_media_url(server.url, stored.media_id, Keyring(["x"]), 3600, clock())
    missing = sign_media_url(server.url, "e" * 32, keyring, ttl_s=3600, now=clock())
    async with httpx.AsyncClient(timeout=5) as http:
        assert (await http.get(good)).status_code == 200
        answers = [await http.get(u) for u in (forged, other_key, missing)]
        answers.append(await http.get(f"{server.url}/media/{'A' * 60}"))
        answers.append(await http.get(f"{server.url}/media/..%2e%2e"))
        clock.advance(3600)
        answers.append(await http.get(good))  # expired
    for response in answers:
        assert response.status_code == 404
        assert response.content == answers[0].content
        assert response.headers["cache-control"] == "no-store"
        assert "image" not in response.headers["content-type"]
    for url in (good, forged, missing):
        assert token_of_url(url) not in logs.getvalue()


# --- the CRM wants the bytes: multipart to the sandbox -------------------------------------------

REPORT = NewServiceRequest(
    service_code="sampah",
    lat=-6.1754,
    long=106.8272,
    description="Tumpukan sampah di trotoar.",
    attributes={"channel": "telegram", "reporter": "p_0a1b2c"},
)


@pytest.fixture
async def sandbox(tmp_path: Path) -> AsyncIterator[SandboxServer]:
    async with SandboxServer(SandboxStore(tmp_path / "crm.sqlite3")) as server:
        yield server


async def test_photo_bytes_reach_the_crm_and_are_served_back(sandbox: SandboxServer) -> None:
    photo = clean_image(camera_jpeg()).data
    async with Open311Client(sandbox.url, timeout=5) as crm, httpx.AsyncClient(timeout=5) as http:
        request_id = (
            await crm.create_request(REPORT, idempotency_key="k-photo", media=photo)
        ).service_request_id
        again = (
            await crm.create_request(REPORT, idempotency_key="k-photo", media=photo)
        ).service_request_id
        assert again == request_id
        found = await crm.get_request(request_id)
        assert found is not None and found.media_url is not None
        assert found.media_url == f"{sandbox.url}/media/request-{request_id}.jpg"
        served = await http.get(found.media_url)
        assert served.status_code == 200 and served.headers["content-type"] == "image/jpeg"
        assert served.content == photo
        assert_no_metadata(served.content)
        plain = (await crm.create_request(REPORT, idempotency_key="k-plain")).service_request_id
        without = await crm.get_request(plain)
        assert plain != request_id and without is not None and without.media_url is None
        assert (await http.get(f"{sandbox.url}/media/request-{plain}.jpg")).status_code == 404


async def test_replay_with_another_photo_is_refused(sandbox: SandboxServer) -> None:
    async with Open311Client(sandbox.url, timeout=5) as crm:
        await crm.create_request(REPORT, idempotency_key="k-1", media=clean_image(jpeg()).data)
        with pytest.raises(PermanentPeerError) as refused:
            await crm.create_request(
                REPORT, idempotency_key="k-1", media=clean_image(jpeg(80, 40)).data
            )
        assert refused.value.status == 422
        with pytest.raises(PermanentPeerError) as refused:
            await crm.create_request(REPORT, idempotency_key="k-1")  # and without one
        assert refused.value.status == 422


@pytest.mark.parametrize(
    "raw",
    [NOT_IMAGES["PDF"], NOT_IMAGES["HTML"], png_header_only(50_000, 50_000)],
    ids=["PDF", "HTML", "bomb"],
)
async def test_sandbox_refuses_uploads_that_are_not_images(
    sandbox: SandboxServer, raw: bytes
) -> None:
    async with Open311Client(sandbox.url, timeout=5) as crm:
        with pytest.raises(PermanentPeerError) as refused:
            await crm.create_request(REPORT, idempotency_key="k-bad", media=raw)
    assert refused.value.status == 400


async def test_sandbox_refuses_other_file_parts(sandbox: SandboxServer) -> None:
    form = {"service_code": "sampah", "lat": "-6.17", "long": "106.82"}
    photo = ("photo.jpg", jpeg(), "image/jpeg")
    async with httpx.AsyncClient(base_url=sandbox.url, timeout=5) as http:
        wrong_name = await http.post("/requests.json", data=form, files={"foto": photo})
        two = await http.post(
            "/requests.json", data=form, files=[("media", photo), ("media", photo)]
        )
        broken = await http.post(
            "/requests.json",
            content=b"--x\r\nnot really multipart",
            headers={"Content-Type": "multipart/form-data; boundary=x"},
        )
    assert [r.status_code for r in (wrong_name, two, broken)] == [400, 400, 400]


async def test_multipart_carries_api_key_and_jurisdiction(tmp_path: Path) -> None:
    store = SandboxStore(tmp_path / "crm.sqlite3")
    photo = clean_image(jpeg()).data
    async with SandboxServer(store, api_key="kunci", jurisdiction_id="jakarta.go.id") as crm_server:
        async with Open311Client(
            crm_server.url, api_key="kunci", jurisdiction_id="jakarta.go.id", timeout=5
        ) as crm:
            request_id = (
                await crm.create_request(REPORT, idempotency_key="k-sec", media=photo)
            ).service_request_id
        async with Open311Client(crm_server.url, jurisdiction_id="jakarta.go.id") as anonymous:
            with pytest.raises(PermanentPeerError) as refused:
                await anonymous.create_request(REPORT, idempotency_key="k-anon", media=photo)
    assert refused.value.status == 403
    assert store.get_media(int(request_id)) == (photo, "image/jpeg")
