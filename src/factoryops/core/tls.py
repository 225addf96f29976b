"""TLS contexts from the settings: the API's HTTPS listener and every MQTT client of the platform.

A file that cannot be used (missing, unreadable, not PEM, a key that does not match its
certificate) raises :class:`TlsSetupError` with the setting to fix, so a process refuses to start
with one clear line instead of failing later on its first connection.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

from factoryops.core.settings import HttpSettings, MqttSettings


class TlsSetupError(ValueError):
    """A TLS setting names a file that cannot be used; the message says which setting and why."""


def _readable(path: Path, variable: str) -> None:
    try:
        with path.open("rb") as handle:
            handle.read(1)
    except OSError as exc:
        raise TlsSetupError(f"{variable}={path} cannot be read: {exc.strerror or exc}") from exc


def _load_chain(context: ssl.SSLContext, cert: Path, key: Path, prefix: str) -> None:
    _readable(cert, f"{prefix}_CERT_FILE")
    _readable(key, f"{prefix}_KEY_FILE")
    try:
        context.load_cert_chain(certfile=str(cert), keyfile=str(key))
    except ssl.SSLError as exc:
        raise TlsSetupError(
            f"{prefix}_CERT_FILE={cert} and {prefix}_KEY_FILE={key} are not a PEM certificate (chain) "
            f"and its unencrypted private key: {exc.reason or exc}"
        ) from exc


def server_context(http: HttpSettings) -> ssl.SSLContext | None:
    """The HTTPS listener's context, or None for plain HTTP. Used to check the files before uvicorn loads them."""
    if http.tls_cert_file is None or http.tls_key_file is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    _load_chain(context, http.tls_cert_file, http.tls_key_file, "FACTORYOPS_HTTP__TLS")
    return context


def client_context(
    ca_file: Path | None = None,
    cert_file: Path | None = None,
    key_file: Path | None = None,
    insecure: bool = False,
    prefix: str = "FACTORYOPS_MQTT__TLS",
    ca_name: str = "",
) -> ssl.SSLContext:
    """A client context that verifies the server against ``ca_file`` (empty: the system's CAs).

    ``insecure`` skips the check that the certificate names the host (the chain is still
    verified); it is meant for tests only. Errors name ``ca_name`` (default ``<prefix>_CA_FILE``)
    and ``<prefix>_CERT_FILE`` / ``<prefix>_KEY_FILE``.
    """
    ca_name = ca_name or f"{prefix}_CA_FILE"
    if ca_file is not None:
        _readable(ca_file, ca_name)
    try:
        context = ssl.create_default_context(cafile=str(ca_file) if ca_file is not None else None)
    except ssl.SSLError as exc:
        raise TlsSetupError(f"{ca_name}={ca_file} holds no PEM CA certificate: {exc.reason or exc}") from exc
    if cert_file is not None and key_file is not None:
        _load_chain(context, cert_file, key_file, prefix)
    if insecure:
        context.check_hostname = False
    return context


def mqtt_client_context(mqtt: MqttSettings) -> ssl.SSLContext | None:
    """The context of the platform's MQTT clients (telemetry service, readiness probe), or None for plain MQTT."""
    if not mqtt.tls:
        return None
    return client_context(mqtt.tls_ca_file, mqtt.tls_cert_file, mqtt.tls_key_file, mqtt.tls_insecure)


@dataclass(frozen=True)
class PlainLink:
    """A link of the platform that runs without TLS, and how to fix that."""

    what: str
    fix: str


def plain_links(http: HttpSettings | None, mqtt: MqttSettings | None) -> list[PlainLink]:
    """The links of these settings that run without TLS and nobody said are protected otherwise.

    ``http.tls_proxy`` says TLS ends in front of the API; ``mqtt.private_network`` says the telemetry
    service's own link to an external broker stays on a private network. The embedded broker takes
    the devices' connections itself, so it is always a plain link.
    """
    links: list[PlainLink] = []
    if http is not None and (http.tls_cert_file is None or http.tls_key_file is None) and not http.tls_proxy:
        links.append(
            PlainLink(
                f"the API and web portal serve plain HTTP on {http.host}:{http.port}",
                "terminate TLS in front of the API (a reverse proxy on this host; then set "
                "FACTORYOPS_HTTP__TLS_PROXY=true) or set FACTORYOPS_HTTP__TLS_CERT_FILE and "
                "FACTORYOPS_HTTP__TLS_KEY_FILE",
            )
        )
    if mqtt is not None and not mqtt.tls:
        if mqtt.embedded:
            links.append(
                PlainLink(
                    f"the embedded MQTT broker on {mqtt.host}:{mqtt.port} speaks plain MQTT only",
                    "run Mosquitto or EMQX with a TLS listener for the devices and set "
                    "FACTORYOPS_MQTT__EMBEDDED=false and FACTORYOPS_MQTT__TLS=true",
                )
            )
        elif not mqtt.private_network:
            links.append(
                PlainLink(
                    f"the telemetry service talks plain MQTT to the broker at {mqtt.host}:{mqtt.port}",
                    "set FACTORYOPS_MQTT__TLS=true and FACTORYOPS_MQTT__TLS_CA_FILE (broker port 8883), or keep "
                    "this link on a private network and set FACTORYOPS_MQTT__PRIVATE_NETWORK=true",
                )
            )
    return links
