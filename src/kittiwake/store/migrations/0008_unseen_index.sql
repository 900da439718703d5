-- RFC 3501 §6.3.1: an IMAP4rev1 SELECT answers with the sequence number of the first unseen message. In
-- the usual mailbox everything but the newest has been read, so finding it walked every message row; this
-- partial index holds only the unseen ones, which makes it one lookup, whatever the mailbox's size.

CREATE INDEX messages_unseen ON messages (mailbox_id, uid) WHERE system_flags & 1 = 0;
