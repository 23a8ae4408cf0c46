"""Sending invitations and reminders: e-mail over SMTP, SMS through a pluggable backend."""
