-- RFC 2180 §4.1.1: a server may keep expunged messages readable until every session has been told of the
-- expunge. A session that loaded a message's row just before another session expunged it still reads its
-- bytes a moment later (a FETCH of many bodies reads them one after the other), so the bytes of an
-- expunged message are not deleted with its last reference: the blob is marked with the time it was
-- released and deleted by a sweep once that is old enough, or at the next start.

ALTER TABLE blobs ADD COLUMN released_at INTEGER;
CREATE INDEX blobs_released ON blobs (released_at) WHERE released_at IS NOT NULL;
