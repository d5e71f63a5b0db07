-- Leave by the half day and with a photo: the school's session times (whole-day and
-- half-day leave are stored as these times, and approved leave marks only the registers
-- whose session it covers), how each request was asked for, and the photo's content type.

alter table attendance_settings
    add column morning_start   time not null default '08:00',
    add column morning_end     time not null default '12:00',
    add column afternoon_start time not null default '14:00',
    add column afternoon_end   time not null default '17:30',
    add constraint attendance_sessions_in_order
        check (morning_start < morning_end and morning_end <= afternoon_start
               and afternoon_start < afternoon_end);

alter table leave_requests
    -- 'days': whole days; 'morning' / 'afternoon': half a day; 'time': a start and an end.
    add column span       text not null default 'time'
                          check (span in ('days', 'morning', 'afternoon', 'time')),
    -- Detected from the photo's bytes, never taken from the upload's name or header.
    add column photo_type text check (photo_type in ('image/jpeg', 'image/png', 'image/webp', 'image/heic')),
    add check ((photo_key is null) = (photo_type is null));
