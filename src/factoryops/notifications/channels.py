"""The two delivery channels: email over SMTP and WhatsApp through Twilio's Messages API."""

from __future__ import annotations

import json
import re
import smtplib
import ssl
from collections.abc import Sequence
from email.message import EmailMessage

import httpx

from factoryops.core.settings import NotificationSettings


class ChannelOff(RuntimeError):
    """The channel is not configured; the delivery fails at once with this reason."""


def send_email(
    settings: NotificationSettings,
    to: str,
    subject: str,
    body: str,
    attachments: Sequence[tuple[str, str, bytes]] = (),
) -> None:
    """Sends one email; ``attachments`` are (file name, MIME type, content)."""
    if not settings.smtp_host:
        raise ChannelOff("email is not configured (FACTORYOPS_NOTIFICATIONS__SMTP_HOST)")
    message = EmailMessage()
    message["From"] = settings.smtp_from
    message["To"] = to
    message["Subject"] = subject
    message.set_content(body)
    for filename, mime, data in attachments:
        maintype, _, subtype = mime.partition("/")
        message.add_attachment(data, maintype=maintype, subtype=subtype or "octet-stream", filename=filename)
    password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
    smtp: smtplib.SMTP
    if settings.smtp_ssl:
        smtp = smtplib.SMTP_SSL(
            settings.smtp_host,
            settings.smtp_port,
            timeout=settings.timeout_seconds,
            context=ssl.create_default_context(),
        )
    else:
        smtp = smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=settings.timeout_seconds)
    with smtp:
        if settings.smtp_starttls and not settings.smtp_ssl:
            smtp.starttls(context=ssl.create_default_context())
        if settings.smtp_username:
            smtp.login(settings.smtp_username, password or "")
        smtp.send_message(message)


# WhatsApp refuses template variables with new lines, tabs or more than four spaces in a row.
_TEMPLATE_SPACE = re.compile(r"\s*\n\s*|\t| {5,}")
TEMPLATE_VARIABLE_MAX = 1000


def template_variable(text: str) -> str:
    """``text`` as a WhatsApp template variable: one line (lines joined with " | "), at most 1,000 characters."""
    flat = _TEMPLATE_SPACE.sub(" | ", text.strip())
    return flat if len(flat) <= TEMPLATE_VARIABLE_MAX else flat[: TEMPLATE_VARIABLE_MAX - 1] + "\u2026"


def send_whatsapp(settings: NotificationSettings, to: str, subject: str, body: str) -> str:
    """Sends through Twilio, as the configured template or as a free-form body; returns the message SID."""
    if not settings.twilio_account_sid or not settings.twilio_whatsapp_from:
        raise ChannelOff("WhatsApp is not configured (FACTORYOPS_NOTIFICATIONS__TWILIO_ACCOUNT_SID and _WHATSAPP_FROM)")
    token = settings.twilio_auth_token.get_secret_value() if settings.twilio_auth_token else ""
    url = f"{settings.twilio_base_url.rstrip('/')}/2010-04-01/Accounts/{settings.twilio_account_sid}/Messages.json"
    message: dict[str, str] = {"From": f"whatsapp:{settings.twilio_whatsapp_from}", "To": f"whatsapp:{to}"}
    if settings.twilio_whatsapp_content_sid:
        message["ContentSid"] = settings.twilio_whatsapp_content_sid
        message["ContentVariables"] = json.dumps({"1": template_variable(subject), "2": template_variable(body)})
    else:
        message["Body"] = f"{subject}\n{body}"
    response = httpx.post(
        url,
        data=message,
        auth=(settings.twilio_account_sid, token),
        timeout=settings.timeout_seconds,
    )
    if response.status_code >= 400:
        try:
            detail = response.json().get("message", response.text)
        except ValueError:
            detail = response.text
        raise RuntimeError(f"Twilio answered {response.status_code}: {str(detail)[:300]}")
    return str(response.json().get("sid", ""))
