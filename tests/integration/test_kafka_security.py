"""The worker on a secured Apache Kafka: TLS, SASL logins, and ACLs that grant it only its own.

A private one-node cluster whose client listener is SASL_SSL (a certificate from a CA made
here with trustme), with SCRAM and PLAIN users and ``StandardAuthorizer`` ACLs. The admin
creates the topics and produces through the ``hubcounter`` commands; the worker may read
its events and metadata topics and its group, and write its dead-letter topic, nothing else.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
import redis
import trustme
from cryptography.hazmat.primitives import serialization

from stream import kafka
from stream.devstack import KafkaCluster, KafkaSecurity, Stack, kafka_cluster
from stream.errors import KafkaAccessError
from stream.reference import run
from stream.settings import Settings
from stream.simulate import Simulation
from tests.support import (
    end_offsets,
    isolated_settings,
    read_topic,
    snapshot,
    start_worker,
    wait_committed,
)

pytestmark = [pytest.mark.integration, pytest.mark.cluster]

PASSWORDS = {"admin": "admin-pw-1", "worker": "worker-pw-2", "stranger": "stranger-pw-3"}
NOW = datetime.now(UTC)
SEED, REPOS, EVENTS = 41, 500, 20_000


@dataclass
class Secured:
    cluster: KafkaCluster
    cafile: str
    settings: Settings  # the worker's: SCRAM-SHA-512 as ``worker``, password from a file
    admin: Settings

    def as_user(self, user: str, password: str, **overrides: object) -> Settings:
        return Settings(**{**self.settings.model_dump(), "kafka_sasl_username": user, "kafka_sasl_password_file": None,
                           "kafka_sasl_password": password, **overrides})


def _tls_files(workdir: Path) -> tuple[Path, Path]:
    """A CA, and the broker's PEM keystore (PKCS#8 key, then its certificate chain)."""
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    key = serialization.load_pem_private_key(cert.private_key_pem.bytes(), None)
    keystore = workdir / "broker.pem"
    keystore.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption())
                         + b"".join(blob.bytes() for blob in cert.cert_chain_pems))
    cafile = workdir / "ca.pem"
    ca.cert_pem.write_to_path(str(cafile))
    return keystore, cafile


@pytest.fixture(scope="module")
def secured(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Secured]:
    workdir = tmp_path_factory.mktemp("secured")
    keystore, cafile = _tls_files(workdir)
    password_file = workdir / "worker.password"
    password_file.write_text(PASSWORDS["worker"] + "\n")
    with kafka_cluster(workdir, 1, KafkaSecurity(keystore, PASSWORDS)) as cluster:
        base = isolated_settings(stack, "secured", kafka_bootstrap=cluster.bootstrap)
        worker = base.model_copy(update={
            "kafka_security_protocol": "SASL_SSL", "kafka_sasl_mechanism": "SCRAM-SHA-512",
            "kafka_sasl_username": "worker", "kafka_sasl_password_file": str(password_file),
            "kafka_ssl_cafile": str(cafile)})
        cluster.grant("worker", ("Read", "Describe"), topics=(worker.events_topic, worker.metadata_topic),
                      groups=(worker.group,))
        cluster.grant("worker", ("Write", "Describe"), topics=(worker.dlq_topic,))
        secured = Secured(cluster, str(cafile), worker, worker)
        secured.admin = secured.as_user("admin", PASSWORDS["admin"])
        yield secured


def _hubcounter(settings: Settings, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run ``hubcounter ARGS`` with the Kafka settings in the environment, as an operator would."""
    env = {**os.environ, "KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
           "KAFKA_SECURITY_PROTOCOL": settings.kafka_security_protocol,
           "KAFKA_SASL_MECHANISM": settings.kafka_sasl_mechanism}
    for name, value in (("KAFKA_SASL_USERNAME", settings.kafka_sasl_username),
                        ("KAFKA_SSL_CAFILE", settings.kafka_ssl_cafile),
                        ("KAFKA_SASL_PASSWORD_FILE", settings.kafka_sasl_password_file),
                        ("KAFKA_SASL_PASSWORD", settings.kafka_sasl_password and
                         settings.kafka_sasl_password.get_secret_value())):
        if value:
            env[name] = value
    return subprocess.run([sys.executable, "-m", "stream", *args], env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)


def test_worker_counts_exactly_over_sasl_ssl_with_only_its_acls(secured: Secured, workdir: Path) -> None:
    # The admin creates the topics and feeds the simulator's traffic through the CLI; the
    # worker, allowed only its own topics and group, counts it exactly and dead-letters the bad.
    s, admin = secured.settings, secured.admin
    redis.Redis.from_url(s.redis_url).flushall()  # the session's Redis: counts of earlier tests
    made = _hubcounter(admin, "topics", "--partitions", "4", "--events-topic", s.events_topic,
                       "--metadata-topic", s.metadata_topic, "--dlq-topic", s.dlq_topic)
    assert made.returncode == 0, made.stderr
    fed = _hubcounter(admin, "simulate", "--seed", str(SEED), "--repos", str(REPOS), "--count", str(EVENTS),
                      "--now", NOW.isoformat(), "--bad-fraction", "0.01", "--bootstrap", s.kafka_bootstrap,
                      "--topic", s.events_topic, "--metadata-topic", s.metadata_topic)
    assert fed.returncode == 0, fed.stderr
    sim = Simulation(seed=SEED, repos=REPOS, now=NOW, bad_fraction=0.01)
    values = [r.value for r in sim.records(EVENTS)]
    reference = run(values, metadata=list(sim.metadata()), now=NOW)
    bad = reference.dead_lettered
    ends = end_offsets(admin, s.events_topic, 4)
    assert sum(ends.values()) == EVENTS
    worker = start_worker(s, workdir)
    try:
        wait_committed(admin, {p: end - 1 for p, end in ends.items() if end})
    finally:
        worker.stop()
    assert snapshot(s) == reference.counts
    letters = read_topic(admin, s.dlq_topic, expected=bad)
    assert bad > 0 and len(letters) == bad
    assert all(orjson.loads(letter.value)["reason"] for letter in letters)
    assert PASSWORDS["worker"] not in (workdir / "worker.log").read_text()


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_every_sasl_mechanism_logs_in(secured: Secured, mechanism: str) -> None:
    settings = secured.as_user("worker", PASSWORDS["worker"], kafka_sasl_mechanism=mechanism)

    async def brokers() -> list:
        admin = kafka.admin(settings.kafka)
        await admin.start()  # fails unless the TLS handshake and the login succeed
        try:
            return (await admin.describe_cluster())["brokers"]
        finally:
            await admin.close()

    assert len(asyncio.run(brokers())) == 1


@pytest.mark.parametrize(("case", "expected"), [
    ("wrong password", "SASL SCRAM-SHA-512 authentication as 'worker' refused"),
    ("unknown CA", "does not verify against"),
    ("no ACLs", "denies user 'stranger' access to topic(s)"),
])
def test_refused_worker_fails_fast_in_one_line(secured: Secured, tmp_path: Path, case: str, expected: str) -> None:
    # A setting to fix, not an outage to wait out: the worker exits at once, saying what is wrong.
    if case == "wrong password":
        settings = secured.as_user("worker", "not-the-password")
    elif case == "unknown CA":
        other_ca = tmp_path / "other-ca.pem"
        trustme.CA().cert_pem.write_to_path(str(other_ca))
        settings = secured.settings.model_copy(update={"kafka_ssl_cafile": str(other_ca)})
    else:
        settings = secured.as_user("stranger", PASSWORDS["stranger"])
    began = time.monotonic()
    done = _hubcounter(settings, "worker", "--web-port", "0", "--redis-url", settings.redis_url,
                       "--events-topic", settings.events_topic, "--metadata-topic", settings.metadata_topic,
                       "--dlq-topic", settings.dlq_topic, "--group", settings.group, timeout=60)
    output = (done.stdout + done.stderr).strip().splitlines()
    assert done.returncode != 0 and time.monotonic() - began < 30
    assert len(output) == 1 and expected in output[0], output
    assert "Traceback" not in output[0]
    assert not any(password in output[0] for password in (*PASSWORDS.values(), "not-the-password"))


def test_access_errors_are_not_retried_by_the_metadata_feed(secured: Secured) -> None:
    # Past the preflight (a grant revoked later, say), the feed must stop, not loop on a refusal.
    from stream.metadata import LibraryMap, MetadataFeed

    stranger = secured.as_user("stranger", PASSWORDS["stranger"])
    feed = MetadataFeed(stranger.kafka, stranger.metadata_topic, LibraryMap())
    with pytest.raises(KafkaAccessError, match="stranger"):
        asyncio.run(asyncio.wait_for(feed.run(), 30))
