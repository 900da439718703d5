-- Accounts, mailboxes and messages. Times are seconds since the epoch.

CREATE TABLE domains (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE
);

CREATE TABLE accounts (
    id INTEGER PRIMARY KEY,
    domain_id INTEGER NOT NULL REFERENCES domains(id),
    address TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    quota_bytes INTEGER,
    quota_messages INTEGER,
    created INTEGER NOT NULL
);

CREATE TABLE aliases (
    source TEXT NOT NULL,
    target TEXT NOT NULL,
    PRIMARY KEY (source, target)
);

CREATE TABLE mailboxes (
    id INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES accounts(id),
    name TEXT NOT NULL,
    special_use TEXT,
    uid_validity INTEGER NOT NULL,
    uid_next INTEGER NOT NULL DEFAULT 1,
    highest_modseq INTEGER NOT NULL DEFAULT 1,
    messages INTEGER NOT NULL DEFAULT 0,
    unseen INTEGER NOT NULL DEFAULT 0,
    deleted INTEGER NOT NULL DEFAULT 0,
    size INTEGER NOT NULL DEFAULT 0,
    UNIQUE (account_id, name)
);

CREATE TABLE subscriptions (
    account_id INTEGER NOT NULL REFERENCES accounts(id),
    name TEXT NOT NULL,
    PRIMARY KEY (account_id, name)
);

-- Message bytes: inline for small messages, else a file name under the blob area. Shared by every message
-- row (and queue entry) that refers to it; removed with its last reference.
CREATE TABLE blobs (
    id INTEGER PRIMARY KEY,
    size INTEGER NOT NULL,
    data BLOB,
    file_name TEXT,
    refs INTEGER NOT NULL
);

CREATE TABLE messages (
    mailbox_id INTEGER NOT NULL REFERENCES mailboxes(id),
    uid INTEGER NOT NULL,
    modseq INTEGER NOT NULL,
    internal_date INTEGER NOT NULL,
    size INTEGER NOT NULL,
    system_flags INTEGER NOT NULL DEFAULT 0,
    keywords TEXT,
    blob_id INTEGER NOT NULL REFERENCES blobs(id),
    structure BLOB NOT NULL,
    PRIMARY KEY (mailbox_id, uid)
) WITHOUT ROWID;

CREATE INDEX messages_by_modseq ON messages (mailbox_id, modseq);

-- RFC 7162 §3.2.5: expunged UIDs with the MODSEQ of their expunge, for VANISHED (EARLIER).
CREATE TABLE expunged (
    mailbox_id INTEGER NOT NULL,
    uid INTEGER NOT NULL,
    modseq INTEGER NOT NULL,
    PRIMARY KEY (mailbox_id, uid)
) WITHOUT ROWID;

CREATE TABLE meta (
    key TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
