"""Device MQTT passwords in Mosquitto 2's own hash format (``$7$``: PBKDF2-SHA512).

One format serves all three brokers: the Mosquitto password file is written from the stored
hashes as they are, and the EMQX HTTP auth endpoint and the embedded broker verify against
the same hashes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

ITERATIONS = 101  # Mosquitto's default for mosquitto_passwd


def hash_mqtt_password(password: str, iterations: int = ITERATIONS) -> str:
    salt = secrets.token_bytes(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
    return f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def verify_mqtt_password(password: str, stored: str) -> bool:
    try:
        _, kind, iterations, salt_b64, digest_b64 = stored.split("$")
        if kind != "7":
            return False
        salt = base64.b64decode(salt_b64)
        expected = base64.b64decode(digest_b64)
        actual = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, int(iterations))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


def new_mqtt_password() -> str:
    return secrets.token_urlsafe(24)
