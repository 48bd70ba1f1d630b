"""The identity vault: pseudonyms, encryption at rest, rotation and retention."""

from __future__ import annotations

import json

import pytest

from bridge.vault import Contact, Vault
from kanal import streams
from kanal.keys import Keyring
from kanal.redis import Redis
from tests.conftest import Clock


def test_pseudonym_is_stable_keyed_and_survives_rotation() -> None:
    a = Keyring(["old-key"])
    assert a.pseudonym("telegram", "12345") == a.pseudonym("telegram", "12345")
    assert a.pseudonym("telegram", "12345") != a.pseudonym("sms", "12345")
    assert a.pseudonym("telegram", "12345") != Keyring(["other-key"]).pseudonym("telegram", "12345")
    rotated = Keyring(["new-key", "old-key"])
    assert rotated.pseudonym("telegram", "12345") == a.pseudonym("telegram", "12345")
    assert "12345" not in a.pseudonym("telegram", "12345")


async def seal(redis: Redis, keyring: Keyring, conv: str, contact: Contact, at: float) -> None:
    await redis.hset(
        streams.vault_key(conv),
        mapping={
            "contact": keyring.encrypt(contact.model_dump_json().encode()),
            "touched_at": str(int(at)),
        },
    )


async def test_contact_is_encrypted_at_rest_and_rotates(redis: Redis, clock: Clock) -> None:
    old = Keyring(["old-key"])
    contact = Contact(channel="sms", address="+6281234567890")
    await seal(redis, old, "p_x", contact, clock())
    raw = json.dumps(await redis.hgetall(streams.vault_key("p_x")))
    assert "6281234567890" not in raw and "sms" not in raw
    both = Keyring(["new-key", "old-key"])
    assert await Vault(redis, both).contact("p_x") == contact
    assert await Vault(redis, both).rotate() == 1
    only_new = Keyring(["new-key"])
    assert await Vault(redis, only_new).contact("p_x") == contact, "re-encrypted with the new key"
    assert await Vault(redis, old).contact("p_x") is None, "the old key alone no longer reads it"


async def test_retention_purges_only_closed_and_old(redis: Redis, clock: Clock) -> None:
    keyring = Keyring(["k"])
    vault = Vault(redis, keyring, retention_days=30, clock=clock)
    c = Contact(channel="console", address="warga")
    for conv in ("p_open", "p_closed_recent", "p_closed_old", "p_lookup_old"):
        await seal(redis, keyring, conv, c, clock())
    async with redis.pipeline(transaction=True) as tx:
        vault.report_filed(tx, "p_open", "2400001")
        vault.report_filed(tx, "p_closed_old", "2400002")
        vault.report_filed(tx, "p_closed_recent", "2400003")
        await tx.execute()
    async with redis.pipeline(transaction=True) as tx:
        vault.report_closed(tx, "p_closed_old", "2400002")
        await tx.execute()
    clock.advance(31 * 86400)
    async with redis.pipeline(transaction=True) as tx:
        vault.report_closed(tx, "p_closed_recent", "2400003")
        await tx.execute()
    dry = await vault.purge(dry_run=True)
    assert dry.purged == 2 and await vault.contact("p_closed_old") is not None
    result = await vault.purge()
    assert (result.scanned, result.purged, result.kept_open) == (4, 2, 1)
    assert await vault.contact("p_closed_old") is None
    assert await vault.contact("p_lookup_old") is None
    assert await vault.contact("p_open") is not None, "an open report keeps its reporter"
    assert await vault.contact("p_closed_recent") is not None


async def test_a_report_not_yet_filed_keeps_its_contact(redis: Redis, clock: Clock) -> None:
    keyring = Keyring(["k"])
    vault = Vault(redis, keyring, retention_days=1, clock=clock)
    await seal(redis, keyring, "p_pending", Contact(channel="console", address="w"), clock())
    await redis.hset(streams.vault_key("p_pending"), "pending:abc", "1")
    await redis.hset(streams.vault_key("p_unstamped"), "contact", "x")
    clock.advance(10 * 86400)
    result = await vault.purge()
    assert result.purged == 0 and result.kept_open == 1
    clock.advance(2 * 86400)
    assert (await vault.purge()).purged == 1, "the unstamped record ages from its first purge"


def test_media_links_survive_key_rotation() -> None:
    from kanal.medialinks import sign_media_url, verify_token

    media_id = "ab" * 16
    url = sign_media_url("https://kanal.example", media_id, Keyring(["old"]), 3600, now=1000)
    token = url.rsplit("/", 1)[1]
    assert verify_token(token, Keyring(["new", "old"]), now=2000) == media_id
    assert verify_token(token, Keyring(["new"]), now=2000) is None


def test_sealed_values_open_under_a_rotated_keyring_and_not_under_another() -> None:
    from kanal.keys import Keyring

    sealed = Keyring(["old"]).seal(b"balasan")
    assert Keyring(["new", "old"]).unseal(sealed) == b"balasan"
    assert Keyring(["new", "old"]).seal(b"x") != Keyring(["new", "old"]).seal(b"x")  # nonce
    with pytest.raises(ValueError):
        Keyring(["someone-else"]).unseal(sealed)
    with pytest.raises(ValueError):
        Keyring(["old"]).unseal("not sealed at all")
