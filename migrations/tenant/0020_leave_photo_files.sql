-- A leave request's photo is a file of the files service (its quota, its previews), owned
-- by the request; photos stored before this keep only their key.
alter table leave_requests add column photo_file_id bigint references files (id) on delete set null;
