-- RFC 3501 §2.3.2 \Recent: a message is recent in the first session told of it. As Dovecot keeps a "first
-- recent UID" in each mailbox's index, a mailbox row keeps the lowest UID no session has claimed yet; the
-- session that SELECTs the mailbox (or hears of new mail in it) claims every UID from there to UIDNEXT by
-- moving it up, in one writer transaction, so no two sessions claim the same message. `recent` counts the
-- messages at or above it, for STATUS RECENT without reading any message row. Nothing is stored per message.
--
-- Whether the messages already here were ever reported to a session cannot be known, so they are recent:
-- RFC 3501 §2.3.2 says such a message SHOULD be considered recent.

ALTER TABLE mailboxes ADD COLUMN first_recent_uid INTEGER NOT NULL DEFAULT 1;
ALTER TABLE mailboxes ADD COLUMN recent INTEGER NOT NULL DEFAULT 0;
UPDATE mailboxes SET recent = messages;
