"""The DNS records a domain needs so others deliver to us and trust what we send, zone-file style."""

from __future__ import annotations

from pathlib import Path

from kittiwake.admin.keys import dkim_key_path, dkim_public_record


def _txt(value: str) -> str:
    """A TXT value split into quoted strings of at most 255 octets (RFC 1035 §3.3.14)."""
    chunks = [value[i : i + 250] for i in range(0, len(value), 250)] or [""]
    return " ".join(f'"{chunk}"' for chunk in chunks)


def records_for(domain: str, hostname: str, key_dir: Path, selector: str) -> list[str]:
    lines = [
        f"; {domain}",
        f"{domain}.\t3600\tIN\tMX\t10 {hostname}.",
        f"{domain}.\t3600\tIN\tTXT\t{_txt('v=spf1 mx -all')}",
        f"_dmarc.{domain}.\t3600\tIN\tTXT\t{_txt(f'v=DMARC1; p=quarantine; rua=mailto:postmaster@{domain}')}",
    ]
    key = dkim_key_path(key_dir, domain, selector)
    if key.exists():
        lines.append(f"{selector}._domainkey.{domain}.\t3600\tIN\tTXT\t{_txt(dkim_public_record(key))}")
    else:
        lines.append(f"; no DKIM key at {key}: 'kittiwake domain add {domain}' makes one")
    return lines


def host_records(hostname: str) -> list[str]:
    return [
        f"; {hostname}: the mail host itself",
        f"{hostname}.\t3600\tIN\tA\t<this server's IPv4 address>",
        f"{hostname}.\t3600\tIN\tAAAA\t<this server's IPv6 address, if it has one>",
        f"; and a PTR record for each address pointing back to {hostname}",
    ]
