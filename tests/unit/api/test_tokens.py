"""Tokens and rate-limit buckets as values: format, parsing, scope, expiry, buckets (pure)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest

from stream.api import keys
from stream.api.ratelimit import Verdict, address_bucket, token_bucket
from stream.api.tokens import Token, bearer, check_token_name, digest, new_token, parse_expiry, token_id_of
from stream.errors import ConfigError

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def stored(orgs: tuple[str, ...], expires: datetime | None = None) -> Token:
    return Token("0123456789abcdef", "t", orgs, NOW, expires, "0" * 64)


def test_a_new_token_carries_its_id_and_32_random_bytes() -> None:
    token, token_id = new_token()
    assert token_id_of(token) == token_id and len(token_id) == 16
    assert token != new_token()[0]
    assert token.startswith(f"hct_{token_id}_") and len(token) == len("hct_") + 16 + 1 + 43


@pytest.mark.parametrize("text", [
    "", "hct_", "hct_0123456789ABCDEF_" + "x" * 43, "hct_0123456789abcdef_" + "x" * 42,
    "hct_0123456789abcdef_" + "x" * 44, "xyz_0123456789abcdef_" + "x" * 43, "hct_0123456789abcdef_" + "x" * 42 + "!",
])
def test_anything_but_a_well_formed_token_has_no_id(text: str) -> None:
    # Checked before any Redis call: garbage never becomes a lookup.
    assert token_id_of(text) is None


def test_redis_keeps_the_sha256_of_the_token() -> None:
    token, _ = new_token()
    assert digest(token) == hashlib.sha256(token.encode()).hexdigest()


@pytest.mark.parametrize(("header", "token"), [
    ("Bearer abc", "abc"), ("bearer   abc ", "abc"), ("BEARER abc", "abc"), ("Basic abc", ""), ("Bearer", ""),
    ("abc", ""),
])
def test_bearer_takes_the_token_of_a_bearer_header_only(header: str, token: str) -> None:
    assert bearer(header) == token


def test_a_token_covers_its_organisations_and_star_covers_all() -> None:
    assert stored(("acme", "beta")).covers("beta")
    assert not stored(("acme",)).covers("acmeX") and not stored(("acme",)).covers("Acme")
    assert not stored(("acme",)).covers(None)  # data no organisation owns: operators only
    assert stored(("*",)).covers("anyone") and stored(("*",)).covers(None)


def test_a_token_expires_at_its_expiry() -> None:
    token = stored(("acme",), NOW + timedelta(days=1))
    assert not token.expired(NOW + timedelta(hours=23, minutes=59))
    assert token.expired(NOW + timedelta(days=1))
    assert not stored(("acme",)).expired(NOW + timedelta(days=10_000))


def test_the_stored_record_round_trips() -> None:
    token = stored(("acme", "*"), NOW + timedelta(days=90))
    assert Token.from_record(token.token_id, token.record()) == token
    assert b"hct_" not in token.record()


@pytest.mark.parametrize(("text", "lifetime"), [
    ("90d", timedelta(days=90)), ("12h", timedelta(hours=12)), ("30m", timedelta(minutes=30)),
    ("2w", timedelta(weeks=2)), ("never", None),
])
def test_expiry_values(text: str, lifetime: timedelta | None) -> None:
    assert parse_expiry(text) == lifetime


@pytest.mark.parametrize("text", ["", "0d", "90", "1y", "-1d", "1.5d", "d", "forever"])
def test_bad_expiry_values_are_refused(text: str) -> None:
    with pytest.raises(ConfigError, match="invalid expiry"):
        parse_expiry(text)


@pytest.mark.parametrize("name", ["", "a b", "x" * 65, "name/with/slash", "é"])
def test_bad_token_names_are_refused(name: str) -> None:
    with pytest.raises(ConfigError, match="invalid token name"):
        check_token_name(name)


def test_ipv4_clients_have_a_bucket_each() -> None:
    assert address_bucket("192.0.2.1") == keys.bucket("a", "192.0.2.1") == "hc:rl:{a:192.0.2.1}"
    assert address_bucket("192.0.2.1") != address_bucket("192.0.2.2")


def test_ipv6_clients_share_a_bucket_per_64_network() -> None:
    # One host usually holds a /64: a bucket per address would give it 2**64 of them.
    assert address_bucket("2001:db8:1:2::1") == address_bucket("2001:db8:1:2:ffff::9") == "hc:rl:{a:2001:db8:1:2::/64}"
    assert address_bucket("2001:db8:1:3::1") != address_bucket("2001:db8:1:2::1")
    assert address_bucket("::ffff:192.0.2.1") == address_bucket("192.0.2.1")


def test_clients_without_a_usable_address_share_one_bucket() -> None:
    assert address_bucket(None) == address_bucket("") == address_bucket("not-an-ip") == "hc:rl:{a:unknown}"


def test_bucket_keys_are_one_cluster_slot_each() -> None:
    # The whole bucket name is the hash tag: buckets spread over the cluster's slots.
    assert token_bucket("0123456789abcdef") == "hc:rl:{t:0123456789abcdef}"


@pytest.mark.parametrize(("seconds", "header"), [(0.001, "1"), (0.2, "1"), (1.0, "1"), (1.5, "2"), (30.0, "30")])
def test_retry_after_is_whole_seconds_rounded_up(seconds: float, header: str) -> None:
    assert Verdict(False, seconds).retry_after_header == header
