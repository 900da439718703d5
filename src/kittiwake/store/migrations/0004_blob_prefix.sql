-- Header fields the server adds in front of a received message (Return-Path, Authentication-Results,
-- Received) are known only once the message has ended; they are kept here, before the body bytes, so a
-- large message spooled to a file never has to be rewritten to put them in front.

ALTER TABLE blobs ADD COLUMN prefix BLOB;
