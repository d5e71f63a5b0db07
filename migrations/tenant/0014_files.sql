-- The files service: every uploaded file of the school (originals under `files/` in the
-- school's prefix, previews under `previews/<id>/`), resumable upload sessions, and the
-- school's preview settings.

create table files (
    id               bigint generated always as identity primary key,
    -- Relative to the school's prefix; random, never derived from the file's name.
    object_key       text not null unique,
    file_name        text not null check (length(file_name) between 1 and 255),
    -- Told by the bytes, not by the name or the client's header.
    content_type     text not null,
    kind             text not null check (kind in ('image', 'pdf', 'office', 'other')),
    size             bigint not null check (size >= 0),
    -- The county account that uploaded it.
    uploaded_by      bigint not null,
    -- What the file belongs to (a notice, a leave request…): whoever may see that object
    -- may see the file. Null while it belongs to nothing yet (only the uploader sees it).
    owner_kind       text,
    owner_id         bigint,
    preview_status   text not null default 'none'
                     check (preview_status in ('none', 'pending', 'working', 'ready', 'unavailable')),
    preview_pages    integer,
    preview_error    text,
    preview_attempts smallint not null default 0,
    -- A worker's claim on a preview; another worker retries once it has passed.
    preview_lease    timestamptz,
    created_at       timestamptz not null default now(),
    check ((owner_kind is null) = (owner_id is null))
);

create index files_owner_idx on files (owner_kind, owner_id);
create index files_uploader_idx on files (uploaded_by, created_at desc);
create index files_preview_todo_idx on files (id) where preview_status in ('pending', 'working');

-- A resumable upload: the client sends chunks of `chunk_size` bytes at increasing offsets,
-- each stored at once as one part of an S3 multipart upload.
create table file_uploads (
    id              text primary key,
    -- Set when the first chunk arrives (its bytes tell the content type to store).
    s3_upload_id    text,
    object_key      text not null unique,
    file_name       text not null check (length(file_name) between 1 and 255),
    size            bigint not null check (size > 0),
    received        bigint not null default 0 check (received >= 0),
    -- ETags of the parts stored so far, in order.
    parts           text[] not null default '{}',
    content_type    text,
    kind            text,
    created_by      bigint not null,
    created_at      timestamptz not null default now(),
    expires_at      timestamptz not null
);

create table file_settings (
    id          boolean primary key default true check (id),
    -- Draw the viewer's name across preview pages.
    watermark   boolean not null default false,
    updated_at  timestamptz not null default now()
);

insert into file_settings default values;

-- Notice attachments are files of the files service (older rows keep only their key).
alter table notice_attachments add column file_id bigint references files (id);
