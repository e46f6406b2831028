"""maildesk.toml: defaults, `init`, validation that names the key at fault, secrets resolved on use."""

from __future__ import annotations

import tomllib
from datetime import timedelta
from importlib import resources
from pathlib import Path

import pytest

from maildesk.config import Config, Secret, load_config, parse_config
from maildesk.durations import parse_duration, parse_size
from maildesk.errors import ConfigError


def test_defaults_without_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    config = load_config(None)
    assert config.database_url == "sqlite:///maildesk.db"
    assert config.desk.ticket_prefix == "MD"
    assert config.sla.first_response == timedelta(hours=2)
    assert config.hours.week["sat"] == (9 * 60 + 30, 13 * 60 + 30)
    assert "sun" not in config.hours.week


def test_init_writes_a_config_that_loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    from maildesk.cli import main

    monkeypatch.chdir(tmp_path)
    assert main(["init"]) == 0
    text = (tmp_path / "maildesk.toml").read_text()
    assert text.count("#") > 20, "the written config explains its keys"
    config = load_config(tmp_path / "maildesk.toml")
    assert config.desk.addresses == ("support@helpdesk.example",)
    assert config.agents[0].team == "Service Desk"
    assert config.hours.holidays == ("2026-12-25",)
    # a second init does not overwrite the user's file
    assert main(["init"]) == 1
    assert "exists" in capsys.readouterr().err


def test_shipped_config_matches_the_design_keys() -> None:
    text = resources.files("maildesk").joinpath("default_config.toml").read_text()
    data = tomllib.loads(text)
    for section, keys in {
        "desk": {"name", "addresses", "ticket_prefix", "secret", "lead"},
        "database": {"url"},
        "storage": {"path"},
        "smtp": {"listen", "max_size", "lmtp"},
        "outbound": {"relay", "username", "password"},
        "sla": {"first_response", "unclaimed_alert", "no_update"},
    }.items():
        assert keys <= set(data[section]), section


@pytest.mark.parametrize(
    ("toml", "key"),
    [
        ('[smtp]\nmax_size = "lots"', "smtp.max_size"),
        ('[sla]\nstatus_update = { critical = "1h" }', "sla.status_update.critical"),
        ('[sla]\nstatus_update = { high = "soon" }', "sla.status_update.high"),
        ('[sla]\nconfirm_within = "2h"', "sla.confirm_within"),
        ('[sla]\ndigest = ["noon"]', "sla.digest[0]"),
        ('[sla]\nfirst_response_by_priority = { urgent = "fast" }', "sla.first_response_by_priority.urgent"),
        ('[smtp]\nlisten = "nowhere"', "smtp.listen"),
        ('[sla]\nfirst_response = "soon"', "sla.first_response"),
        ('[desk]\naddresses = ["not an address"]', "desk.addresses[0]"),
        ('[desk]\nticket_prefix = "M D"', "desk.ticket_prefix"),
        ('[desk]\nnmae = "typo"', "desk.nmae"),
        ('[hours]\nmon = "25:00-26:00"', "hours.mon"),
        ('[hours]\ntimezone = "Mars/Olympus"', "hours.timezone"),
        ('[[agents]]\naddress = "a@x.example"\nteam = "Nope"', "agents[0].team"),
        ('[[agents]]\nname = "no address"', "agents[0].address"),
        ('[[imap]]\nhost = "imap.example.com"\ntls = "none"', "imap[0].tls"),
        ('[outbound]\nrelay = "ftp://x"', "outbound.relay"),
        ("[threading]\nreopen_window = 5", "threading.reopen_window"),
        ('[limits]\nparts = "many"', "limits.parts"),
        ('[smtp]\ntls_cert = "/nonexistent/cert.pem"\ntls_key = "/nonexistent/key.pem"', "smtp.tls_cert"),
        ("[smtp]\nrequire_tls = true", "smtp.require_tls"),
    ],
)
def test_bad_values_name_the_key(toml: str, key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(tomllib.loads(toml))
    assert caught.value.key == key
    assert key in str(caught.value)


def test_invalid_toml_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "maildesk.toml"
    path.write_text("[desk\nname=")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(path)


def test_secrets_resolve_only_when_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MD_TEST_SECRET", raising=False)
    secret = Secret("desk.secret", "env:MD_TEST_SECRET")
    with pytest.raises(ConfigError, match="MD_TEST_SECRET is not set"):
        secret.reveal()
    monkeypatch.setenv("MD_TEST_SECRET", "s3cret")
    assert secret.reveal() == "s3cret"
    path = tmp_path / "pw"
    path.write_text("from-file\n")
    assert Secret("imap[0].password", f"file:{path}").reveal() == "from-file"
    assert "s3cret" not in repr(secret)


def test_relative_storage_is_relative_to_the_config(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    path = tmp_path / "etc" / "maildesk.toml"
    path.write_text('[storage]\npath = "var"\n')
    assert load_config(path).storage.path == tmp_path / "etc" / "var"


def test_units() -> None:
    assert parse_duration("90s") == timedelta(seconds=90)
    assert parse_duration("2d") == timedelta(days=2)
    assert parse_size("25MB") == 25_000_000
    assert parse_size("512KiB") == 512 * 1024
    with pytest.raises(ValueError):
        parse_duration("2 fortnights")


def test_plus_addresses_belong_to_the_desk() -> None:
    config = Config()
    assert config.is_desk_address("support@helpdesk.example")
    assert config.is_desk_address("Support+MD-12.abc@helpdesk.example")
    assert not config.is_desk_address("support@other.example")
    assert not config.is_desk_address("supporter@helpdesk.example")
