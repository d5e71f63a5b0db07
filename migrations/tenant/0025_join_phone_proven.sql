-- A join application records when its phone was proven with an SMS code (applications
-- from before codes existed have none); approval marks the account's phone proven from it.
alter table join_requests add column phone_proven_at timestamptz;
