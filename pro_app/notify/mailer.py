"""E-mail over SMTP (host, port, STARTTLS and credentials from the settings)."""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.utils import make_msgid


class DeliveryError(RuntimeError):
    """A message could not be sent; the text says why (shown to the coordinator)."""


def send_email(config, *, to: str, subject: str, body: str) -> str:
    """Send one plain-text e-mail; return its Message-ID or raise DeliveryError."""
    host = config.get("SMTP_HOST")
    sender = config.get("MAIL_FROM")
    if not host or not sender:
        raise DeliveryError("e-mail is not set up: set PRO_SMTP_HOST and PRO_MAIL_FROM")
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = make_msgid(domain=sender.split("@")[-1])
    message.set_content(body)
    try:
        with smtplib.SMTP(host, int(config.get("SMTP_PORT") or 25), timeout=20) as smtp:
            if config.get("SMTP_STARTTLS"):
                smtp.starttls(context=ssl.create_default_context())
            if config.get("SMTP_USER"):
                smtp.login(config["SMTP_USER"], config.get("SMTP_PASSWORD") or "")
            smtp.send_message(message)
    except smtplib.SMTPRecipientsRefused as exc:
        # The server's text names the address; what is kept (deliveries, audit) must not.
        codes = sorted({code for code, _text in exc.recipients.values()})
        raise DeliveryError(f"the e-mail server refused the recipient (SMTP {codes})") from None
    except smtplib.SMTPResponseException as exc:
        code = exc.smtp_code
        raise DeliveryError(f"the e-mail server refused the message (SMTP {code})") from None
    except (smtplib.SMTPException, OSError) as exc:
        detail = type(exc).__name__ if to in str(exc) else str(exc)
        raise DeliveryError(f"the e-mail server refused or did not answer: {detail}") from None
    return message["Message-ID"]
