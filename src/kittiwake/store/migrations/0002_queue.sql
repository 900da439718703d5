-- The outbound queue: one entry per message, one row per recipient with its own state.

CREATE TABLE queue_messages (
    id TEXT PRIMARY KEY,
    blob_id INTEGER NOT NULL REFERENCES blobs(id),
    sender TEXT NOT NULL,
    params TEXT NOT NULL,  -- JSON: SMTPUTF8, BODY, REQUIRETLS, RET, ENVID, authenticated user
    created INTEGER NOT NULL
);

CREATE TABLE queue_recipients (
    queue_id TEXT NOT NULL REFERENCES queue_messages(id),
    recipient TEXT NOT NULL,
    params TEXT NOT NULL,  -- JSON: NOTIFY, ORCPT
    status TEXT NOT NULL DEFAULT 'pending',  -- pending | delivered | deferred | failed
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt INTEGER NOT NULL,
    last_reply TEXT,
    PRIMARY KEY (queue_id, recipient)
) WITHOUT ROWID;

CREATE INDEX queue_due ON queue_recipients (status, next_attempt);
