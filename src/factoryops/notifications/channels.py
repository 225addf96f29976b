"""The two delivery channels: email over SMTP and WhatsApp through Twilio's Messages API."""

from __future__ import annotations

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


def send_whatsapp(settings: NotificationSettings, to: str, body: str) -> str:
    """Sends through Twilio; returns the message SID Twilio gave it."""
    if not settings.twilio_account_sid or not settings.twilio_whatsapp_from:
        raise ChannelOff("WhatsApp is not configured (FACTORYOPS_NOTIFICATIONS__TWILIO_ACCOUNT_SID and _WHATSAPP_FROM)")
    token = settings.twilio_auth_token.get_secret_value() if settings.twilio_auth_token else ""
    url = f"{settings.twilio_base_url.rstrip('/')}/2010-04-01/Accounts/{settings.twilio_account_sid}/Messages.json"
    response = httpx.post(
        url,
        data={"From": f"whatsapp:{settings.twilio_whatsapp_from}", "To": f"whatsapp:{to}", "Body": body},
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
