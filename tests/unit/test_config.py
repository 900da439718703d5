from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from kittiwake.admin.config_template import render_config
from kittiwake.config import Config, ConfigError, build_config, load_config, parse_duration, parse_host_port


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "kittiwake.toml"
    path.write_text(text)
    return path


def test_empty_file_gives_every_default(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, ""))
    assert config.smtp.max_message_size == Config().smtp.max_message_size
    assert config.listen.smtp == ("0.0.0.0:25",)
    assert config.base_dir == tmp_path.resolve()


def test_relative_data_dir_resolves_against_the_config_folder(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, '[server]\ndata_dir = "var/mail"\n'))
    assert config.data_dir == tmp_path.resolve() / "var" / "mail"


@pytest.mark.parametrize(
    ("text", "key", "words"),
    [
        ("[smtp]\nmax_recipent = 3\n", "smtp.max_recipent", "unknown setting"),
        ("[smtpd]\n", "smtpd", "unknown section"),
        ('[smtp]\nmax_recipients = "many"\n', "smtp.max_recipients", "whole number"),
        ("[smtp]\nmax_recipients = -1\n", "smtp.max_recipients", ">= 0"),
        ("[smtp]\nmax_recipients = true\n", "smtp.max_recipients", "whole number"),
        ('[listen]\nimap = "localhost"\n', "listen.imap", "host:port"),
        ('[listen]\nimap = "localhost:99999"\n', "listen.imap", "out of range"),
        ('[dns]\nresolver = "8.8.8.8"\n', "dns.resolver", "host:port"),
        ('[queue]\nlifetime = "5 days"\n', "queue.lifetime", "duration"),
        ('[tls]\nmin_version = "1.0"\n', "tls.min_version", '"1.2" or "1.3"'),
        ('[log]\nlevel = "LOUD"\n', "log.level", "DEBUG"),
        ("[listen]\nsmtp = [25]\n", "listen.smtp", "list of strings"),
    ],
)
def test_bad_setting_names_the_file_the_key_and_the_problem(
    tmp_path: Path, text: str, key: str, words: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    assert raised.value.key == key
    assert words in raised.value.problem
    assert str(raised.value).startswith(f"{path}: {key}: ")


def test_invalid_toml_is_reported_with_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[smtp\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(path)


def test_missing_file_is_reported(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "absent.toml")


def test_empty_listener_disables_it(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, '[listen]\nsmtp = ""\nimap = []\nimaps = "[::1]:993"\n'))
    assert config.listen.smtp == ()
    assert config.listen.imap == ()
    assert config.listen.imaps == ("[::1]:993",)


def test_durations_accept_units_and_seconds(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, '[queue]\nlifetime = "2d"\nretry_intervals = ["1m", 300, "1h"]\n'))
    assert config.queue.lifetime == 2 * 86400
    assert config.queue.retry_intervals == (60, 300, 3600)


@pytest.mark.parametrize(
    ("text", "expected"), [("1.2.3.4:53", ("1.2.3.4", 53)), ("[::1]:5353", ("::1", 5353))]
)
def test_host_port_parsing(text: str, expected: tuple[str, int]) -> None:
    assert parse_host_port(text) == expected


def test_duration_parsing() -> None:
    assert parse_duration("90s") == 90
    assert parse_duration(7) == 7


def test_rendered_template_loads_back_with_the_overrides(tmp_path: Path) -> None:
    text = render_config({"server.hostname": "mx.example.org", "listen.smtp": ("127.0.0.1:2525",)})
    config = build_config(tomllib.loads(text), source="t", base_dir=tmp_path)
    assert config.server.hostname == "mx.example.org"
    assert config.listen.smtp == ("127.0.0.1:2525",)
    assert config.queue == Config().queue
