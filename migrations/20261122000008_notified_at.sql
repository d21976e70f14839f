-- When Graph last told us of a change in the organization. The leader queues a delta
-- discovery when no run started since (a notification that arrives while a run is
-- already past the changed section is not lost).
alter table organization add column notified_at timestamptz;
create index organization_notified_idx on organization (notified_at) where notified_at is not null;
