"""RFC 5322 / MIME message format: addresses, headers, the part structure with byte offsets, ENVELOPE data.

Pure: no I/O. May import the standard library and kittiwake.config only.
"""
