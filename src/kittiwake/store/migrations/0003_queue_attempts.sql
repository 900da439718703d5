-- Per-recipient bookkeeping of delivery attempts: whether the sender was told of a delay, and which server
-- gave the last reply (for logs, `kittiwake queue show` and delivery status notifications).

ALTER TABLE queue_recipients ADD COLUMN warned INTEGER NOT NULL DEFAULT 0;
ALTER TABLE queue_recipients ADD COLUMN remote_mta TEXT;
