-- The keywords ever used in a mailbox, so SELECT can list them in FLAGS and PERMANENTFLAGS
-- (RFC 9051 §7.3.5, §7.1) without reading every message. Like Dovecot's keyword list, it only grows.

CREATE TABLE mailbox_keywords (
    mailbox_id INTEGER NOT NULL REFERENCES mailboxes(id),
    keyword TEXT NOT NULL,
    PRIMARY KEY (mailbox_id, keyword)
) WITHOUT ROWID;

WITH RECURSIVE split(mailbox_id, word, rest) AS (
    SELECT mailbox_id, '', keywords || ' ' FROM messages WHERE keywords IS NOT NULL AND keywords != ''
    UNION ALL
    SELECT mailbox_id, substr(rest, 1, instr(rest, ' ') - 1), substr(rest, instr(rest, ' ') + 1)
    FROM split WHERE rest != ''
)
INSERT OR IGNORE INTO mailbox_keywords (mailbox_id, keyword)
SELECT mailbox_id, word FROM split WHERE word != '';
