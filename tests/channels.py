"""The notification channels' far ends, for tests: a real SMTP server (aiosmtpd) that keeps every
message, and a local HTTP server that answers ``POST .../Messages.json`` as Twilio's Messages API
does. Used by the notification tests and by the demo journey in the browser."""

from __future__ import annotations

import email
import email.policy
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

from aiosmtpd.controller import Controller

from factoryops.core.settings import NotificationSettings
from factoryops.jobs.worker import JobWorker
from support import free_port


class Mailbox:
    """aiosmtpd handler: keeps every message it receives."""

    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(envelope)
        return "250 OK"

    def texts(self) -> list[str]:
        return [m.content.decode(errors="replace") for m in list(self.messages)]


@dataclass
class FakeTwilio:
    """Answers as Twilio's Messages API does (201 with a message sid) and keeps every request."""

    requests: list[dict[str, Any]] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    def start(self, port: int = 0) -> str:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                owner.requests.append({"path": self.path, "form": form, "auth": self.headers.get("Authorization", "")})
                body = json.dumps(
                    {"sid": f"SM{len(owner.requests):032d}", "status": "queued", "to": form.get("To", "")}
                ).encode()
                self.send_response(201)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        if self.server:
            self.server.shutdown()
            self.server.server_close()


@dataclass
class Channels:
    mailbox: Mailbox
    twilio: FakeTwilio
    settings: NotificationSettings

    @property
    def whatsapp(self) -> list[dict[str, Any]]:
        return self.twilio.requests

    def mails_to(self, address: str) -> list[str]:
        """Subject and text of the mails to ``address``, in the order they arrived."""
        found = []
        for m in self.mailbox.messages:
            if address in m.rcpt_tos:
                msg = email.message_from_bytes(m.content, policy=email.policy.default)
                found.append(f"Subject: {msg['subject']}\n{msg.get_content()}")  # type: ignore[attr-defined]
        return found


@contextmanager
def open_channels(**settings: Any) -> Iterator[Channels]:
    """A real SMTP server and a fake Twilio on free ports, and the settings that point at them."""
    mailbox = Mailbox()
    smtp_port = free_port()
    smtp = Controller(mailbox, hostname="127.0.0.1", port=smtp_port)
    smtp.start()
    twilio = FakeTwilio()
    url = twilio.start()
    defaults: dict[str, Any] = {
        "smtp_host": "127.0.0.1",
        "smtp_port": smtp_port,
        "smtp_from": "alerts@factoryops.example",
        "twilio_base_url": url,
        "twilio_account_sid": "AC123",
        "twilio_auth_token": "tok",
        "twilio_whatsapp_from": "+14155238886",
    }
    try:
        yield Channels(mailbox, twilio, NotificationSettings(**(defaults | settings)))
    finally:
        smtp.stop()
        twilio.stop()


def drain(worker: JobWorker, rounds: int = 50) -> None:
    """Runs the queued jobs the worker can take now, up to ``rounds``."""
    for _ in range(rounds):
        if not worker.run_one():
            return
