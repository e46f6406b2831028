"""A throwaway Dovecot IMAP server on loopback for the tests (after ../shared/recipes/SERVERS.md).

One server per test session, with TLS: the plain port offers STARTTLS and accepts plaintext
logins from loopback, the second port speaks IMAPS. Its certificate names 127.0.0.1 and is
trusted through `ca_file`. Each test uses its own user (a fresh, empty mailbox), so tests do
not see each other's mail; the passdb accepts any user name with the password `secret`.
"""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import count
from pathlib import Path

IS_ROOT = os.geteuid() == 0
PASSWORD = "secret"

CONF = """\
protocols = imap
listen = 127.0.0.1
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
ssl = yes
ssl_cert = <{d}/cert.pem
ssl_key = <{d}/key.pem
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
default_internal_user = {user}
default_internal_group = {group}
default_login_user = {user}
first_valid_uid = 1
mail_location = maildir:{d}/mail/%u
mailbox_idle_check_interval = 1s
passdb {{
  driver = static
  args = password={password}
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={d}/mail/%u
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    port = {port}
  }}
  inet_listener imaps {{
    port = {tls_port}
  }}
}}
service anvil {{
  chroot =
}}
service ipc {{
  chroot =
}}
service old-stats {{
  chroot =
}}
service imap-urlauth-login {{
  chroot =
}}
"""


@dataclass
class Dovecot:
    host: str
    port: int
    tls_port: int
    folder: str
    config: str
    ca_file: str
    _users: Iterator[int]

    def new_user(self) -> str:
        return f"user{next(self._users)}"

    def client(self, user: str):  # type: ignore[no-untyped-def]
        """A separate IMAP client, as a customer's provider or a person would use."""
        from imapclient import IMAPClient

        client = IMAPClient(self.host, port=self.port, ssl=False, timeout=30)
        client.login(user, PASSWORD)
        return client

    def kick(self, user: str) -> None:
        """Drop every connection of `user`, as a server restart or a network fault would."""
        subprocess.run(
            ["doveadm", "-c", self.config, "kick", user], check=True, capture_output=True, timeout=30
        )

    def log(self) -> str:
        path = Path(self.folder, "dovecot.log")
        return path.read_text(errors="replace") if path.exists() else ""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _greeting(port: int, proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    # the port opens before the login processes run: only the greeting means ready
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"dovecot exited with code {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                if s.recv(100).startswith(b"* OK"):
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"no IMAP greeting on port {port}")


def start_dovecot(missing) -> Iterator[Dovecot]:  # type: ignore[no-untyped-def]
    if not shutil.which("dovecot"):
        missing("Dovecot is not installed (apt-get install -y dovecot-imapd)")
    # Dovecot refuses to keep mail as root: as root it runs as the dovecot user
    pw = pwd.getpwnam("dovecot") if IS_ROOT else pwd.getpwuid(os.getuid())
    # not pytest's tmp_path: the dovecot user cannot enter it, and socket paths must be short
    d = tempfile.mkdtemp(prefix="maildesk-imap-")
    port, tls_port = _free_port(), _free_port()
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-keyout", f"{d}/key.pem", "-out", f"{d}/cert.pem", "-subj", "/CN=127.0.0.1",
            "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    conf = os.path.join(d, "dovecot.conf")
    with open(conf, "w") as f:
        f.write(
            CONF.format(
                d=d, port=port, tls_port=tls_port, user=pw.pw_name, uid=pw.pw_uid, gid=pw.pw_gid,
                group=grp.getgrgid(pw.pw_gid).gr_name, password=PASSWORD,
            )
        )  # fmt: skip
    for root, dirs, files in os.walk(d):
        for name in [root, *(os.path.join(root, n) for n in dirs + files)]:
            os.chown(name, pw.pw_uid, pw.pw_gid)
    drop = {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []} if IS_ROOT else {}
    err = open(os.path.join(d, "stderr.log"), "wb")  # noqa: SIM115 - open while the server runs
    proc = subprocess.Popen(
        ["dovecot", "-F", "-c", conf], cwd=d, stdout=err, stderr=subprocess.STDOUT, **drop
    )
    try:
        _greeting(port, proc)
    except RuntimeError as exc:
        proc.kill()
        proc.wait()
        err.close()
        logs = "".join(
            Path(d, n).read_text(errors="replace")
            for n in ("stderr.log", "dovecot.log")
            if Path(d, n).exists()
        )
        shutil.rmtree(d, ignore_errors=True)
        raise RuntimeError(f"{exc}:\n{logs}") from None
    try:
        yield Dovecot("127.0.0.1", port, tls_port, d, conf, f"{d}/cert.pem", count(1))
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        err.close()
        shutil.rmtree(d, ignore_errors=True)
