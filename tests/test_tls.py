"""TLS (spec section 12): HTTPS of the API, MQTT over TLS to a real Mosquitto, the readiness probe.

A throwaway CA and server certificates for 127.0.0.1/localhost are made with ``cryptography``;
Mosquitto gets TLS listeners beside the plain one its helper writes.
"""

from __future__ import annotations

import ipaddress
import json
import re
import ssl
import subprocess
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from fastapi.testclient import TestClient
from pydantic import ValidationError

from factoryops.core.db import utcnow
from factoryops.core.health import mqtt_ping
from factoryops.core.settings import HttpSettings, MqttSettings
from factoryops.core.tls import TlsSetupError, client_context, mqtt_client_context, server_context
from factoryops.ports.timeseries.base import FactoryScope
from factoryops.ports.timeseries.embedded import EmbeddedTimeseriesStore
from factoryops.simulator import SimDevice, Simulator
from services import factoryops, mosquitto, read_until, stop, wait_port
from support import auth, free_port

# OpenSSL's words for a chain that ends in a CA the client does not know (which one depends on
# whether the server sends the CA along)
NOT_TRUSTED = "unable to get local issuer certificate|self-signed certificate in certificate chain"


@dataclass(frozen=True)
class Pki:
    ca: Path  # the CA certificate clients verify with
    cert: Path  # server certificate for localhost and 127.0.0.1
    key: Path
    wrong_cert: Path  # server certificate signed by the same CA for another name only
    wrong_key: Path
    ca_key: Path  # a key that belongs to no server certificate


def _write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> None:
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )


def _server_cert(
    ca_cert: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    names: list[x509.GeneralName],
    folder: Path,
    stem: str,
) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, stem)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    cert_path, key_path = folder / f"{stem}.pem", folder / f"{stem}-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_key(key, key_path)
    return cert_path, key_path


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    folder = tmp_path_factory.mktemp("pki")
    ca_key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "FactoryOps test CA")])
    now = datetime.now(UTC)
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    ca = folder / "ca.pem"
    ca.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    ca_key_path = folder / "ca-key.pem"
    _write_key(ca_key, ca_key_path)
    local = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    cert, key = _server_cert(ca_cert, ca_key, local, folder, "server")
    wrong_cert, wrong_key = _server_cert(ca_cert, ca_key, [x509.DNSName("broker.elsewhere.example")], folder, "wrong")
    return Pki(ca, cert, key, wrong_cert, wrong_key, ca_key_path)


def tls_listener(port: int, cert: Path, key: Path, ca: Path) -> str:
    """Mosquitto lines for one more listener, over TLS (the helper writes the plain one itself)."""
    return f"listener {port} 127.0.0.1\ncafile {ca}\ncertfile {cert}\nkeyfile {key}\n"


def run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    proc = factoryops(args, env, cwd)
    out, _ = proc.communicate(timeout=120)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, "")


# ---------------------------------------------------------------------------------------------- HTTPS


@pytest.mark.nodb  # the API process uses its own SQLite file
def test_api_serves_https_only(pki: Pki, tmp_path: Path) -> None:
    port = free_port()
    env = {
        "FACTORYOPS_DATA_DIR": str(tmp_path / "data"),
        "FACTORYOPS_HTTP__PORT": str(port),
        "FACTORYOPS_AUTH__BCRYPT_ROUNDS": "4",
        "FACTORYOPS_HTTP__TLS_CERT_FILE": str(pki.cert),
        "FACTORYOPS_HTTP__TLS_KEY_FILE": str(pki.key),
    }
    api = factoryops(["api"], env, tmp_path)
    try:
        read_until(api, f"web portal on https://127.0.0.1:{port}")
        verified = ssl.create_default_context(cafile=str(pki.ca))
        r = httpx.get(f"https://127.0.0.1:{port}/healthz", verify=verified, timeout=10)
        assert r.status_code == 200 and r.json()["status"] == "ok"
        # plain HTTP on the HTTPS port gets no answer
        with pytest.raises(httpx.TransportError):
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=10)
        # a client that does not trust the CA refuses the server's certificate
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            httpx.get(f"https://127.0.0.1:{port}/healthz", timeout=10)
        # the server still answers afterwards
        assert httpx.get(f"https://127.0.0.1:{port}/healthz", verify=verified, timeout=10).status_code == 200
    finally:
        code, out = stop(api)
    assert code == 0, out


@pytest.mark.nodb
def test_tls_settings_that_cannot_work_are_refused(pki: Pki, tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="FACTORYOPS_HTTP__TLS_CERT_FILE is set without FACTORYOPS_HTTP__TLS_KEY"):
        HttpSettings(tls_cert_file=pki.cert)
    with pytest.raises(ValidationError, match="FACTORYOPS_MQTT__TLS_KEY_FILE is set without FACTORYOPS_MQTT__TLS_CERT"):
        MqttSettings(tls=True, tls_key_file=pki.key)
    with pytest.raises(ValidationError, match="FACTORYOPS_MQTT__TLS is false"):
        MqttSettings(tls_ca_file=pki.ca)

    assert server_context(HttpSettings()) is None
    assert isinstance(server_context(HttpSettings(tls_cert_file=pki.cert, tls_key_file=pki.key)), ssl.SSLContext)
    missing = tmp_path / "nowhere" / "server-key.pem"
    with pytest.raises(TlsSetupError, match=re.escape(f"FACTORYOPS_HTTP__TLS_KEY_FILE={missing} cannot be read")):
        server_context(HttpSettings(tls_cert_file=pki.cert, tls_key_file=missing))
    with pytest.raises(
        TlsSetupError, match=re.escape("are not a PEM certificate (chain) and its unencrypted private key")
    ):
        server_context(HttpSettings(tls_cert_file=pki.cert, tls_key_file=pki.ca_key))  # another certificate's key

    assert mqtt_client_context(MqttSettings()) is None
    context = mqtt_client_context(MqttSettings(tls=True, tls_ca_file=pki.ca))
    assert context is not None and context.check_hostname and context.verify_mode == ssl.CERT_REQUIRED
    insecure = mqtt_client_context(MqttSettings(tls=True, tls_ca_file=pki.ca, tls_insecure=True))
    assert insecure is not None and not insecure.check_hostname and insecure.verify_mode == ssl.CERT_REQUIRED
    with pytest.raises(
        TlsSetupError, match=re.escape(f"FACTORYOPS_MQTT__TLS_CA_FILE={pki.key} holds no PEM CA certificate")
    ):
        mqtt_client_context(MqttSettings(tls=True, tls_ca_file=pki.key))


@pytest.mark.nodb
def test_processes_refuse_to_start_with_bad_tls_settings(pki: Pki, tmp_path: Path) -> None:
    base = {"FACTORYOPS_DATA_DIR": str(tmp_path / "data"), "FACTORYOPS_HTTP__PORT": str(free_port())}
    missing = tmp_path / "nowhere" / "server-key.pem"
    env = {**base, "FACTORYOPS_HTTP__TLS_CERT_FILE": str(pki.cert), "FACTORYOPS_HTTP__TLS_KEY_FILE": str(missing)}
    result = run(["api"], env, tmp_path)
    assert result.returncode == 2
    assert result.stdout.strip() == (
        f"factoryops: FACTORYOPS_HTTP__TLS_KEY_FILE={missing} cannot be read: No such file or directory"
    )
    result = run(["up"], {**base, "FACTORYOPS_MQTT__TLS": "true"}, tmp_path)
    assert result.returncode == 2
    assert "the embedded MQTT broker speaks plain MQTT only" in result.stdout


# ---------------------------------------------------------------------------------------------- MQTT


def stored(store_dir: Path, factory_id: str, device_id: str, prop: str) -> list[float]:
    store = EmbeddedTimeseriesStore(store_dir)
    try:
        result = store.query(
            FactoryScope(factory_id),
            [device_id],
            [prop],
            utcnow() - timedelta(hours=1),
            utcnow() + timedelta(seconds=1),
        )
        return [s.value for s in next(iter(result.series.values()), [])]
    finally:
        store.close()


def wait_stored(store_dir: Path, factory_id: str, device_id: str, prop: str, timeout: float = 30) -> list[float]:
    deadline = time.monotonic() + timeout
    values: list[float] = []
    while time.monotonic() < deadline:
        values = stored(store_dir, factory_id, device_id, prop)
        if values:
            return values
        time.sleep(0.2)
    return values


def test_telemetry_over_tls_to_mosquitto(
    pki: Pki, client: TestClient, make_factory: Any, tmp_path: Path, database_url: str
) -> None:
    world = make_factory(with_admins=False)
    r = client.post("/api/v1/devices", headers=auth(world.super_token), json={"device_id": "meter-1"})
    assert r.status_code == 201, r.text
    r = client.post("/api/v1/devices", headers=auth(world.super_token), json={"device_id": "sim-1"})
    assert r.status_code == 201, r.text
    sim_creds = r.json()["mqtt"]
    plain_port, tls_port = free_port(), free_port()
    env = {
        "FACTORYOPS_DATA_DIR": str(tmp_path / "data"),
        "FACTORYOPS_DATABASE__URL": database_url,
        "FACTORYOPS_MQTT__PORT": str(tls_port),
        "FACTORYOPS_MQTT__TLS": "true",
        "FACTORYOPS_MQTT__TLS_CA_FILE": str(pki.ca),
        "FACTORYOPS_TELEMETRY_NAME": "tls-test",
    }
    store_dir = tmp_path / "data" / "timeseries"
    with mosquitto(tmp_path / "broker", plain_port, extra=tls_listener(tls_port, pki.cert, pki.key, pki.ca)):
        wait_port(tls_port)
        service = factoryops(["telemetry"], env, tmp_path)
        try:
            read_until(service, "over TLS")
            read_until(service, "confirmed by the broker")
            # a device publishes over TLS, verifying the broker with the same CA
            device = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="tls-meter-1", protocol=mqtt.MQTTv5)
            device.tls_set(ca_certs=str(pki.ca))
            device.connect("127.0.0.1", tls_port)
            device.loop_start()
            info = device.publish(
                f"factories/{world.id}/devices/meter-1/telemetry", json.dumps({"power_kw": 42.5}), qos=1
            )
            info.wait_for_publish(10)
            assert info.is_published()
            assert wait_stored(store_dir, world.id, "meter-1", "power_kw") == [42.5]
            device.loop_stop()
            device.disconnect()
            # the simulator publishes over TLS too
            sim = SimDevice("sim-1", sim_creds["username"], sim_creds["password"], "tls-sim-1", sim_creds["topic"])
            simulator = Simulator(
                "127.0.0.1", tls_port, [sim], interval=0.2, upgrade_after=None, tls=client_context(pki.ca)
            )
            simulator.start()
            try:
                assert wait_stored(store_dir, world.id, "sim-1", "power_kw"), "no simulated point stored"
            finally:
                simulator.stop()
        finally:
            code, out = stop(service)
        assert code == 0, out
        assert "telemetry service connected to MQTT" in out

        # without the CA the system's CAs do not know the broker's certificate: no connection, a clear error
        untrusting = {k: v for k, v in env.items() if k != "FACTORYOPS_MQTT__TLS_CA_FILE"}
        untrusting["FACTORYOPS_TELEMETRY_NAME"] = "tls-test-no-ca"
        service = factoryops(["telemetry"], untrusting, tmp_path)
        try:
            line = read_until(service, "TLS certificate at").splitlines()[-1]
        finally:
            code, out = stop(service)
        assert code == 0, out
        assert f"the MQTT broker's TLS certificate at 127.0.0.1:{tls_port} is not trusted" in line
        assert re.search(NOT_TRUSTED, line), line
        assert "set FACTORYOPS_MQTT__TLS_CA_FILE to the CA that signed it" in line
        assert "telemetry service connected" not in out


@pytest.mark.nodb
def test_readiness_probe_over_tls(pki: Pki, tmp_path: Path) -> None:
    plain_port, tls_port, wrong_port = free_port(), free_port(), free_port()
    extra = tls_listener(tls_port, pki.cert, pki.key, pki.ca) + tls_listener(
        wrong_port, pki.wrong_cert, pki.wrong_key, pki.ca
    )
    with mosquitto(tmp_path / "broker", plain_port, extra=extra):
        wait_port(tls_port)
        wait_port(wrong_port)
        mqtt_ping("127.0.0.1", tls_port, None, None, tls=client_context(pki.ca))
        mqtt_ping("localhost", tls_port, None, None, tls=client_context(pki.ca))
        mqtt_ping("127.0.0.1", plain_port, None, None)
        # without the CA: the certificate is not trusted
        with pytest.raises(ssl.SSLCertVerificationError, match=NOT_TRUSTED):
            mqtt_ping("127.0.0.1", tls_port, None, None, tls=client_context(None))
        # plain MQTT on the TLS port gets no MQTT answer
        with pytest.raises(OSError):
            mqtt_ping("127.0.0.1", tls_port, None, None)
        # a certificate from the right CA for another name: refused, unless the host check is off (tests only)
        with pytest.raises(ssl.SSLCertVerificationError, match="IP address mismatch"):
            mqtt_ping("127.0.0.1", wrong_port, None, None, tls=client_context(pki.ca))
        mqtt_ping("127.0.0.1", wrong_port, None, None, tls=client_context(pki.ca, insecure=True))
