-- Delta runs read only what can have changed (docs/jobs.md, "Full and delta"): users and
-- groups through their delta links, every other section on its own slower schedule or
-- when something asks for it. What that decision needs is kept per organization and
-- section: when an applied run last read the section, and when something (a change
-- notification naming it, an operator) last asked for it to be read again.
create table discovery_section (
    organization_id uuid not null references organization (organization_id) on delete cascade,
    section         text not null,
    read_at         timestamptz,
    requested_at    timestamptz,
    primary key (organization_id, section)
);

-- Requests as Microsoft counts them for throttling (every item of a `$batch` is evaluated
-- on its own) stay in `graph_requests`; the HTTP requests sent (a `$batch` once) are
-- counted beside them.
alter table discovery_run add column graph_round_trips integer not null default 0;
