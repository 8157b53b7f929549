"""The Kafka connection settings: validated once, turned into aiokafka options, never leaking the password."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
import trustme
from click.testing import CliRunner
from pydantic import ValidationError

from stream import kafka
from stream.devstack import worker_process
from stream.errors import ConfigError, KafkaAccessError
from stream.kafka import KafkaConnection
from stream.settings import Settings
from stream.simulate.commands import simulate

pytestmark = pytest.mark.unit

SECRET = "s3cr3t-never-shown"


@pytest.fixture(scope="module")
def ca_file(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("tls") / "ca.pem"
    trustme.CA().cert_pem.write_to_path(str(path))
    return str(path)


def test_plaintext_is_just_the_bootstrap_servers() -> None:
    assert KafkaConnection("a:1,b:2").options() == {"bootstrap_servers": "a:1,b:2"}
    assert KafkaConnection("a:1,[::1]:2").servers() == [("a", 1), ("::1", 2)]


def test_sasl_ssl_options_verify_the_broker(ca_file: str) -> None:
    options = KafkaConnection("a:1", "SASL_SSL", "SCRAM-SHA-512", "worker", SECRET, ca_file).options()
    context = options.pop("ssl_context")
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert options == {"bootstrap_servers": "a:1", "security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-512",
                       "sasl_plain_username": "worker", "sasl_plain_password": SECRET}


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"security_protocol": "SASL_SSL"}, "needs KAFKA_SASL_USERNAME"),
    ({"security_protocol": "SASL_PLAINTEXT", "sasl_username": "u"}, "KAFKA_SASL_PASSWORD"),
    ({"security_protocol": "TLS"}, "KAFKA_SECURITY_PROTOCOL must be one of"),
    ({"sasl_mechanism": "GSSAPI"}, "KAFKA_SASL_MECHANISM must be one of"),
    ({"ssl_certfile": "c.pem"}, "both KAFKA_SSL_CERTFILE and KAFKA_SSL_KEYFILE"),
])
def test_incomplete_settings_are_refused(kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        KafkaConnection("a:1", **kwargs)


def test_missing_ca_file_names_the_file(tmp_path: Path) -> None:
    missing = str(tmp_path / "nope.pem")
    with pytest.raises(ConfigError, match=r"nope\.pem"):
        KafkaConnection("a:1", "SSL", ssl_cafile=missing).options()


def test_the_password_never_shows() -> None:
    connection = KafkaConnection("a:1", "SASL_SSL", "PLAIN", "worker", SECRET)
    assert SECRET not in repr(connection) and SECRET not in connection.describe()
    assert connection.describe() == "a:1 (SASL_SSL, PLAIN as worker)"
    settings = Settings(kafka_security_protocol="SASL_PLAINTEXT", kafka_sasl_username="w", kafka_sasl_password=SECRET)
    assert SECRET not in repr(settings) and SECRET not in str(settings.model_dump())
    with pytest.raises(ValidationError) as refused:  # a refused setting does not echo its input
        Settings(kafka_security_protocol="SASL_PLAINTEXT", kafka_sasl_password=SECRET)
    assert SECRET not in str(refused.value)


def test_settings_from_the_environment_and_a_password_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           ca_file: str) -> None:
    secret_file = tmp_path / "password"
    secret_file.write_text(SECRET + "\n")
    for name, value in {"KAFKA_BOOTSTRAP": "k:9093", "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
                        "KAFKA_SASL_MECHANISM": "SCRAM-SHA-256", "KAFKA_SASL_USERNAME": "worker",
                        "KAFKA_SASL_PASSWORD_FILE": str(secret_file), "KAFKA_SSL_CAFILE": ca_file}.items():
        monkeypatch.setenv(name, value)
    connection = Settings().kafka
    assert connection == KafkaConnection("k:9093", "SASL_SSL", "SCRAM-SHA-256", "worker", SECRET, ca_file)
    monkeypatch.setenv("KAFKA_SASL_PASSWORD", "other")
    with pytest.raises(ValidationError, match="not both"):
        Settings()


def test_worker_processes_get_the_password_through_the_environment(tmp_path: Path) -> None:
    # A command line is visible to every user of the machine (ps); the environment is not.
    settings = Settings(kafka_security_protocol="SASL_PLAINTEXT", kafka_sasl_username="w", kafka_sasl_password=SECRET)
    process = worker_process(settings, tmp_path)
    assert not [arg for arg in process.argv if SECRET in arg or "password" in arg]
    assert process.env is not None and process.env["KAFKA_SASL_PASSWORD"] == SECRET
    assert "--kafka-sasl-username" in process.argv


def test_simulate_builds_its_producer_from_the_security_options(monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[dict] = []

    class Refused:
        def __init__(self, **options: object) -> None:
            made.append(options)
            raise KafkaAccessError("stop here")

    monkeypatch.setattr(kafka, "AIOKafkaProducer", Refused)
    args = ["--repos", "50", "--count", "10", "--bootstrap", "b:1", "--kafka-security-protocol", "SASL_PLAINTEXT",
            "--kafka-sasl-mechanism", "SCRAM-SHA-512", "--kafka-sasl-username", "u", "--kafka-sasl-password", SECRET]
    result = CliRunner().invoke(simulate, args)
    assert isinstance(result.exception, KafkaAccessError)
    assert made and made[0]["sasl_plain_username"] == "u" and made[0]["sasl_mechanism"] == "SCRAM-SHA-512"
    assert made[0]["security_protocol"] == "SASL_PLAINTEXT" and made[0]["bootstrap_servers"] == "b:1"


def test_refusals_become_one_line_access_errors() -> None:
    from aiokafka.errors import KafkaConnectionError, TopicAuthorizationFailedError

    refused = kafka.refusal(TopicAuthorizationFailedError("events"), KafkaConnection("a:1"))
    assert isinstance(refused, KafkaAccessError) and "\n" not in str(refused)
    assert kafka.refusal(KafkaConnectionError("down")) is None  # waiting can fix that one
