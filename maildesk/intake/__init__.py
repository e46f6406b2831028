"""Intake: bytes in from files, SMTP and IMAP, into the spool, and nothing more."""
