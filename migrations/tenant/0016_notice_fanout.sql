-- A school-wide notice writes one notice_recipients row and one inbox_items row per
-- guardian (6,000 of each in a large school) in the sender's request. Each index and
-- per-row foreign-key check on those rows is paid 6,000 times, so keep only what a query
-- needs:
-- * inbox_items(source): every query on the inbox names the recipient first and is served
--   by inbox_items_recipient_idx.
-- * notice_recipients(notice_id) where unread: the primary key starts with notice_id; the
--   reminder reads one notice's rows through it.
-- * the foreign key to notices: recipient rows are written only by the send, in the same
--   transaction as their notice, and notices are never deleted (a school's data goes with
--   its schema), so the check could never fail but cost a lookup per row.
drop index if exists inbox_items_source_idx;
drop index if exists notice_recipients_unread_idx;
alter table notice_recipients drop constraint if exists notice_recipients_notice_id_fkey;

-- Notices from the county (教育局) reach every school as a notice of the school's own, so
-- receipts and reminders work as for any other; they have no sender account here. The
-- county notice's id makes its delivery to this school happen once however often the
-- fan-out is retried.
alter table notices alter column sender_account_id drop not null;
alter table notices add column county_notice_id bigint unique;
