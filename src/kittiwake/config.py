"""Configuration: one TOML file loaded into frozen dataclasses, one place to see every setting.

Every setting has a default. An unknown key, a wrong type or a bad value raises ConfigError, which names the
file, the key and what is wrong; the command line prints that one line and exits with status 2.
Imports the standard library only.
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class ConfigError(Exception):
    """A configuration problem, worded for the person who edits the file."""

    def __init__(self, source: str, key: str, problem: str) -> None:
        super().__init__(f"{source}: {key}: {problem}" if key else f"{source}: {problem}")
        self.source = source
        self.key = key
        self.problem = problem


_HOST_PORT = re.compile(r"^(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<host>[A-Za-z0-9.\-_]*)):(?P<port>\d{1,5})$")
_DURATION = re.compile(r"^(?P<n>\d+)(?P<unit>[smhd])$")
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_host_port(text: str) -> tuple[str, int]:
    """Split "host:port" or "[v6]:port"; raises ValueError with a readable reason."""
    match = _HOST_PORT.match(text)
    if match is None:
        raise ValueError(f'expected "host:port" or "[ipv6]:port", got {text!r}')
    port = int(match["port"])
    if not 0 <= port <= 65535:
        raise ValueError(f"port {port} is out of range 0-65535")
    return (match["v6"] or match["host"] or "", port)


def parse_duration(text: str | int) -> int:
    """Seconds from an integer or a string like "90s", "5m", "4h", "5d"."""
    if isinstance(text, int):
        return text
    match = _DURATION.match(text.strip())
    if match is None:
        raise ValueError(f'expected a duration such as "30s", "5m", "4h" or "5d", got {text!r}')
    return int(match["n"]) * _DURATION_UNITS[match["unit"]]


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerSettings:
    hostname: str = "localhost"  # the name this server gives in banners, HELO and Received headers
    data_dir: str = "data"  # relative paths are relative to the config file's folder


@dataclass(frozen=True, slots=True, kw_only=True)
class ListenSettings:
    """Listener addresses as "host:port"; an empty list (or "") disables a service."""

    smtp: tuple[str, ...] = ("0.0.0.0:25",)
    submission: tuple[str, ...] = ("0.0.0.0:587",)
    submissions: tuple[str, ...] = ("0.0.0.0:465",)
    imap: tuple[str, ...] = ("0.0.0.0:143",)
    imaps: tuple[str, ...] = ("0.0.0.0:993",)


@dataclass(frozen=True, slots=True, kw_only=True)
class TlsSettings:
    cert: str = "tls/cert.pem"  # PEM, server certificate first, then the chain
    key: str = "tls/key.pem"
    min_version: str = "1.2"


@dataclass(frozen=True, slots=True, kw_only=True)
class DnsSettings:
    resolver: str = ""  # "host:port" of a DNS server to use instead of the system's; "" = system


@dataclass(frozen=True, slots=True, kw_only=True)
class StorageSettings:
    inline_max: int = 131072  # messages up to this many bytes live inside the database, larger ones in files
    group_commit_max: int = 256  # most writes sharing one transaction and one fsync


@dataclass(frozen=True, slots=True, kw_only=True)
class SmtpSettings:
    max_message_size: int = 52428800
    max_recipients: int = 100
    max_line_length: int = 4096  # beyond RFC 5321's 512 to leave room for ESMTP parameters
    max_bad_commands: int = 20
    max_connections: int = 1000
    max_connections_per_ip: int = 20
    command_timeout: int = 300  # RFC 5321 §4.5.3.2.7: the server waits at least 5 minutes for a command
    data_timeout: int = 600


@dataclass(frozen=True, slots=True, kw_only=True)
class InboundSettings:
    """Checks on mail from other servers (port 25 only)."""

    verify: bool = True  # SPF, DKIM, DMARC, ARC and an Authentication-Results field
    dmarc_reject: bool = True  # honour p=reject with 550 (quarantine always goes to Junk)
    trusted_arc_sealers: tuple[str, ...] = ()  # forwarders whose ARC pass overrides a DMARC failure
    max_verify_size: int = 10485760  # larger messages are not DKIM-checked (their signatures get "neutral")
    verify_processes: int = 1  # helper processes that check DKIM, ARC and DMARC; 0: in the server process
    dnsbl_zones: tuple[str, ...] = ()  # e.g. ["zen.spamhaus.org"]; a listed client is refused
    greylisting: bool = False
    greylist_delay: int = 300
    max_messages_per_minute: int = 120  # per client address; 0 = no limit
    max_connections_per_minute: int = 60  # per client address; 0 = no limit
    greeting_delay: int = 0  # seconds to wait before the banner; a client that talks first is refused


@dataclass(frozen=True, slots=True, kw_only=True)
class ImapSettings:
    max_connections: int = 10000
    max_connections_per_ip: int = 50
    idle_timeout: int = 1800  # RFC 9051 §5.4: at least 30 minutes
    login_timeout: int = 60  # autologout before authentication
    append_limit: int = 52428800


@dataclass(frozen=True, slots=True, kw_only=True)
class DkimSettings:
    selector: str = "kittiwake"
    key_dir: str = "dkim"  # holds <domain>.<selector>.key files made by `kittiwake init`


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueSettings:
    lifetime: int = 5 * 86400
    delay_warning: int = 4 * 3600
    retry_intervals: tuple[int, ...] = (60, 300, 900, 1800, 3600, 7200, 14400)
    remote_port: int = 25  # port of remote MX hosts; only lab setups and tests change it
    max_connections: int = 50  # outbound connections in total
    max_per_destination: int = 5  # outbound connections to one domain
    connect_timeout: int = 30
    connection_cache_time: int = 2  # seconds a connection stays open for more mail to its destination; 0: off
    connection_reuse_limit: int = 100  # most messages over one connection
    dane: bool = True  # RFC 7672; needs a validating resolver on this host (see mailauth/dane.py)


@dataclass(frozen=True, slots=True, kw_only=True)
class SmarthostSettings:
    """Send outbound mail through another server instead of the recipients' MX (off when host is "")."""

    host: str = ""
    port: int = 587
    tls: str = "starttls"  # "starttls" (port 587) or "implicit" (port 465, RFC 8314)
    username: str = ""
    password: str = ""
    domains: tuple[str, ...] = ()  # only these recipient domains; empty: all
    ca_file: str = ""  # PEM of the CA to trust for the smarthost's certificate; "" = the system's


@dataclass(frozen=True, slots=True, kw_only=True)
class LogSettings:
    level: str = "INFO"


@dataclass(frozen=True, slots=True, kw_only=True)
class Config:
    """The whole configuration. `base_dir` is the folder relative paths are resolved against."""

    base_dir: Path = field(default_factory=Path.cwd)
    source: str = "<defaults>"
    server: ServerSettings = field(default_factory=ServerSettings)
    listen: ListenSettings = field(default_factory=ListenSettings)
    tls: TlsSettings = field(default_factory=TlsSettings)
    dns: DnsSettings = field(default_factory=DnsSettings)
    storage: StorageSettings = field(default_factory=StorageSettings)
    smtp: SmtpSettings = field(default_factory=SmtpSettings)
    inbound: InboundSettings = field(default_factory=InboundSettings)
    imap: ImapSettings = field(default_factory=ImapSettings)
    dkim: DkimSettings = field(default_factory=DkimSettings)
    queue: QueueSettings = field(default_factory=QueueSettings)
    smarthost: SmarthostSettings = field(default_factory=SmarthostSettings)
    log: LogSettings = field(default_factory=LogSettings)

    def path(self, value: str) -> Path:
        """Resolve a configured path relative to the config file's folder."""
        candidate = Path(value)
        return candidate if candidate.is_absolute() else self.base_dir / candidate

    @property
    def data_dir(self) -> Path:
        return self.path(self.server.data_dir)


SECTIONS: dict[str, type[Any]] = {
    "server": ServerSettings,
    "listen": ListenSettings,
    "tls": TlsSettings,
    "dns": DnsSettings,
    "storage": StorageSettings,
    "smtp": SmtpSettings,
    "inbound": InboundSettings,
    "imap": ImapSettings,
    "dkim": DkimSettings,
    "queue": QueueSettings,
    "smarthost": SmarthostSettings,
    "log": LogSettings,
}

_DURATION_KEYS = {
    "smtp.command_timeout",
    "smtp.data_timeout",
    "imap.idle_timeout",
    "imap.login_timeout",
    "queue.lifetime",
    "queue.delay_warning",
    "queue.connect_timeout",
    "queue.connection_cache_time",
    "inbound.greylist_delay",
    "inbound.greeting_delay",
}


def _check_value(key: str, value: object, hint: object) -> object:
    """Coerce one TOML value to the dataclass field type, or raise ValueError saying why not."""
    if key in _DURATION_KEYS:
        if not isinstance(value, int | str) or isinstance(value, bool):
            raise ValueError(f"expected a duration, got {value!r}")
        return parse_duration(value)
    if key == "queue.retry_intervals":
        if not isinstance(value, list) or not value:
            raise ValueError("expected a non-empty list of durations")
        return tuple(parse_duration(item) for item in value)
    if hint is bool:
        if not isinstance(value, bool):
            raise ValueError(f"expected true or false, got {value!r}")
        return value
    if hint is int:
        if not isinstance(value, int) or isinstance(value, bool):
            raise ValueError(f"expected a whole number, got {value!r}")
        if value < 0:
            raise ValueError(f"expected a number >= 0, got {value}")
        return value
    if hint is str:
        if not isinstance(value, str):
            raise ValueError(f"expected a string, got {value!r}")
        return value
    if typing.get_origin(hint) is tuple:
        items = [] if value == "" else value if isinstance(value, list) else [value]
        if not all(isinstance(item, str) for item in items):
            raise ValueError(f"expected a string or a list of strings, got {value!r}")
        return tuple(items)
    raise ValueError(f"unsupported setting type {hint!r}")  # pragma: no cover - a bug in this table


def _validate(config: Config) -> None:
    """Checks that span a value's meaning rather than its type."""
    for name in ("smtp", "submission", "submissions", "imap", "imaps"):
        for address in getattr(config.listen, name):
            try:
                parse_host_port(address)
            except ValueError as error:
                raise ConfigError(config.source, f"listen.{name}", str(error)) from None
    if config.dns.resolver:
        try:
            parse_host_port(config.dns.resolver)
        except ValueError as error:
            raise ConfigError(config.source, "dns.resolver", str(error)) from None
    if config.tls.min_version not in ("1.2", "1.3"):
        raise ConfigError(config.source, "tls.min_version", 'expected "1.2" or "1.3"')
    if config.log.level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ConfigError(config.source, "log.level", "expected DEBUG, INFO, WARNING or ERROR")
    if config.smarthost.tls not in ("starttls", "implicit"):
        raise ConfigError(config.source, "smarthost.tls", 'expected "starttls" or "implicit"')
    if not config.server.hostname or " " in config.server.hostname:
        raise ConfigError(config.source, "server.hostname", "expected a host name")


def build_config(data: dict[str, object], *, source: str, base_dir: Path) -> Config:
    """Turn parsed TOML into a Config, raising ConfigError for the first problem found."""
    sections: dict[str, object] = {}
    for section_name, value in data.items():
        settings_type = SECTIONS.get(section_name)
        if settings_type is None:
            raise ConfigError(source, section_name, f"unknown section; known: {', '.join(SECTIONS)}")
        if not isinstance(value, dict):
            raise ConfigError(source, section_name, "expected a table ([section])")
        hints = typing.get_type_hints(settings_type)
        known = {f.name for f in dataclasses.fields(settings_type)}
        values: dict[str, object] = {}
        for key, item in value.items():
            dotted = f"{section_name}.{key}"
            if key not in known:
                raise ConfigError(source, dotted, f"unknown setting; known: {', '.join(sorted(known))}")
            try:
                values[key] = _check_value(dotted, item, hints[key])
            except ValueError as error:
                raise ConfigError(source, dotted, str(error)) from None
        sections[section_name] = settings_type(**values)
    config = Config(base_dir=base_dir, source=source, **sections)  # type: ignore[arg-type]
    _validate(config)
    return config


def load_config(path: Path) -> Config:
    """Read and validate a TOML configuration file."""
    source = str(path)
    try:
        text = path.read_bytes()
    except OSError as error:
        raise ConfigError(source, "", f"cannot read: {error.strerror}") from None
    try:
        data = tomllib.loads(text.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(source, "", f"not valid TOML: {error}") from None
    return build_config(data, source=source, base_dir=path.resolve().parent)
