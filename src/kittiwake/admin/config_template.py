"""The commented configuration file `kittiwake init` writes, listing every setting with its default."""

from __future__ import annotations

import dataclasses

from kittiwake.config import SECTIONS

_NOTES: dict[str, str] = {
    "server.hostname": "the name this server gives in banners and Received headers; the MX points at it",
    "server.data_dir": "database and message files; relative paths are relative to this file",
    "listen.smtp": "inbound mail from other servers (MX, STARTTLS); [] disables a listener",
    "listen.submission": "mail programs sending (STARTTLS, then AUTH)",
    "listen.submissions": "mail programs sending over implicit TLS (RFC 8314)",
    "listen.imap": "mail programs reading (STARTTLS)",
    "listen.imaps": "mail programs reading over implicit TLS",
    "tls.cert": "PEM: server certificate first, then the chain; replace with a real certificate's path",
    "tls.key": "PEM private key of the certificate",
    "tls.min_version": '"1.2" or "1.3"',
    "dns.resolver": 'a DNS server "host:port" to use instead of the system\'s (split horizon, tests)',
    "storage.inline_max": "messages up to this size (bytes) live inside the database, larger ones in files",
    "storage.group_commit_max": "most writes that share one transaction and one fsync",
    "smtp.max_message_size": "bytes; announced as SIZE",
    "smtp.max_recipients": "per message",
    "smtp.max_line_length": "command line length limit, bytes",
    "smtp.max_bad_commands": "errors before the connection is closed with 421",
    "smtp.max_connections": "in total",
    "smtp.max_connections_per_ip": "from one client address",
    "smtp.command_timeout": "durations: 30s, 5m, 4h, 5d",
    "inbound.verify": "SPF, DKIM, DMARC and ARC checks on mail from other servers, and Authentication-Results",
    "inbound.verify_processes": "helper processes for DKIM, ARC and DMARC (a core of their own); 0: none",
    "inbound.dmarc_reject": "refuse mail whose domain publishes DMARC p=reject and fails it",
    "inbound.trusted_arc_sealers": "forwarders (mailing lists) whose ARC pass is trusted over a DMARC failure",
    "inbound.dnsbl_zones": 'DNS block lists to refuse clients listed in, e.g. ["zen.spamhaus.org"]',
    "inbound.greylisting": "ask unknown (client, sender, recipient) triples to come back after greylist_delay",
    "inbound.greeting_delay": "wait this long before the banner and refuse clients that talk first (0: off)",
    "imap.idle_timeout": "a client idle this long is logged out (RFC 9051 asks for at least 30 minutes)",
    "imap.login_timeout": "time to log in before the connection is closed",
    "imap.append_limit": "largest message APPEND accepts, bytes",
    "dkim.selector": "DKIM selector; the key for a domain is <key_dir>/<domain>.<selector>.key",
    "queue.lifetime": "how long undeliverable mail is retried before it bounces",
    "queue.delay_warning": "when the sender is told that a message is delayed",
    "queue.retry_intervals": "waits between attempts; the last one repeats",
    "queue.remote_port": "port of remote mail servers; change only for tests",
    "queue.max_connections": "outbound connections in total",
    "queue.max_per_destination": "outbound connections to one destination domain",
    "queue.connection_cache_time": "seconds a connection stays open for more mail to its destination; 0: off",
    "queue.connection_reuse_limit": "most messages sent over one outbound connection",
    "queue.dane": "authenticate MX certificates by DNSSEC-signed TLSA records (RFC 7672); needs a validating"
    " resolver on this host",
    "smarthost.host": 'relay outbound mail through this server; "" sends straight to each domain\'s MX',
    "smarthost.tls": '"starttls" (port 587) or "implicit" (port 465)',
    "smarthost.ca_file": 'CA certificate (PEM) to verify the smarthost with; "" uses the system\'s',
    "smarthost.domains": "relay only mail for these domains through the smarthost; [] means all",
    "log.level": "DEBUG, INFO, WARNING or ERROR",
}


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_config(overrides: dict[str, object]) -> str:
    """Every section and setting, each with its note; `overrides` maps "section.key" to a value."""
    lines = ["# kittiwake configuration. Every setting is shown with its default unless set by init.", ""]
    for section, settings_type in SECTIONS.items():
        lines.append(f"[{section}]")
        defaults = settings_type()
        for item in dataclasses.fields(settings_type):
            key = f"{section}.{item.name}"
            value = overrides.get(key, getattr(defaults, item.name))
            note = _NOTES.get(key)
            if note:
                lines.append(f"# {note}")
            lines.append(f"{item.name} = {_toml_value(value)}")
        lines.append("")
    return "\n".join(lines)
