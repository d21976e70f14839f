-- The durable job queue, discovery runs and the tenant inventory.
--
-- The queue follows River's design (docs/jobs.md): explicit states with invariants in
-- CHECK constraints, claim in one statement with FOR UPDATE SKIP LOCKED, uniqueness as a
-- partial unique index over the unfinished states, completion fenced by attempt number,
-- and a heartbeat so a dead worker's jobs are rescued in seconds, not hours.

create extension if not exists pg_trgm;

create table job (
    job_id           uuid primary key,
    -- Null for system jobs; set for everything an MSP may list.
    msp_id           uuid references msp (msp_id) on delete cascade,
    organization_id  uuid references organization (organization_id) on delete cascade,
    kind             text not null check (char_length(kind) between 1 and 64),
    args             jsonb not null,
    state            text not null default 'available'
        check (state in ('available', 'scheduled', 'retryable', 'running', 'completed', 'discarded', 'cancelled')),
    attempt          integer not null default 0 check (attempt >= 0),
    max_attempts     integer not null check (max_attempts > 0),
    snoozes          integer not null default 0 check (snoozes >= 0),
    priority         smallint not null default 2 check (priority between 1 and 4),
    unique_key       text,
    scheduled_at     timestamptz not null default now(),
    created_at       timestamptz not null default now(),
    attempted_at     timestamptz,
    attempted_by     text,
    heartbeat_at     timestamptz,
    finalized_at     timestamptz,
    cancel_requested boolean not null default false,
    last_error       text,
    -- The most recent errors, newest last, at most ten: {"attempt", "at", "error"}.
    errors           jsonb not null default '[]',
    constraint job_finalized_consistent check (
        (finalized_at is null and state not in ('completed', 'discarded', 'cancelled')) or
        (finalized_at is not null and state in ('completed', 'discarded', 'cancelled'))),
    constraint job_running_has_owner check (
        state <> 'running' or (attempted_at is not null and attempted_by is not null and heartbeat_at is not null)),
    constraint job_msp_owns_organization foreign key (msp_id, organization_id)
        references organization (msp_id, organization_id) on delete cascade
);

-- What a worker claims: due jobs in priority order.
create index job_fetch_idx on job (priority, scheduled_at, job_id)
    where state in ('available', 'scheduled', 'retryable');
-- At most one unfinished job per unique key (e.g. one discovery per organization).
create unique index job_unique_idx on job (unique_key)
    where unique_key is not null and state in ('available', 'scheduled', 'retryable', 'running');
create index job_running_idx on job (organization_id) where state = 'running';
create index job_msp_idx on job (msp_id, job_id desc);
create index job_finalized_idx on job (finalized_at) where finalized_at is not null;

-- Discovery schedule and the app's own secret expiry, per organization.
alter table organization
    add column scan_schedule text check (scan_schedule is null or char_length(scan_schedule) <= 100),
    add column next_scan_at timestamptz,
    add column secret_expires_at timestamptz;
create index organization_next_scan_idx on organization (next_scan_at) where next_scan_at is not null;

create table discovery_run (
    run_id          uuid primary key,
    msp_id          uuid not null,
    organization_id uuid not null,
    trigger         text not null check (trigger in ('added', 'schedule', 'manual', 'webhook')),
    mode            text not null check (mode in ('full', 'delta')),
    state           text not null default 'queued'
        check (state in ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    job_id          uuid,
    created_at      timestamptz not null default now(),
    started_at      timestamptz,
    finished_at     timestamptz,
    -- {"users": {"status": "done"|"skipped"|"failed"|"pending", "count": n, "permission": "...", "error": "..."}}
    sections        jsonb not null default '{}',
    graph_requests  integer not null default 0,
    throttled       integer not null default 0,
    error           text,
    foreign key (msp_id, organization_id) references organization (msp_id, organization_id) on delete cascade
);
create index discovery_run_org_idx on discovery_run (organization_id, run_id desc);

-- Pages of a run in progress. A run applies its staged rows to the inventory in one
-- transaction, so readers never see half of a run.
create table discovery_stage (
    run_id    uuid not null references discovery_run (run_id) on delete cascade,
    section   text not null,
    object_id text not null,
    data      jsonb not null,
    removed   boolean not null default false,
    primary key (run_id, section, object_id)
);

-- Delta links per organization and section (users, groups).
create table discovery_cursor (
    organization_id uuid not null references organization (organization_id) on delete cascade,
    section         text not null,
    delta_link      text not null,
    updated_at      timestamptz not null default now(),
    primary key (organization_id, section)
);

create table inventory_user (
    msp_id                   uuid not null,
    organization_id          uuid not null,
    user_id                  uuid not null,
    display_name             text,
    user_principal_name      text,
    mail                     text,
    department               text,
    job_title                text,
    account_enabled          boolean,
    data                     jsonb not null,
    search                   text generated always as (
        lower(coalesce(display_name, '') || ' ' || coalesce(user_principal_name, '') || ' ' || coalesce(mail, ''))) stored,
    primary key (organization_id, user_id),
    foreign key (msp_id, organization_id) references organization (msp_id, organization_id) on delete cascade
);
create index inventory_user_search_idx on inventory_user using gin (search gin_trgm_ops);
create index inventory_user_department_idx on inventory_user (organization_id, lower(department));
create index inventory_user_job_title_idx on inventory_user (organization_id, lower(job_title));

create table inventory_group (
    msp_id          uuid not null,
    organization_id uuid not null,
    group_id        uuid not null,
    display_name    text,
    mail            text,
    kind            text not null check (kind in ('security', 'm365', 'distribution')),
    data            jsonb not null,
    search          text generated always as (lower(coalesce(display_name, '') || ' ' || coalesce(mail, ''))) stored,
    primary key (organization_id, group_id),
    foreign key (msp_id, organization_id) references organization (msp_id, organization_id) on delete cascade
);
create index inventory_group_search_idx on inventory_group using gin (search gin_trgm_ops);

create table inventory_group_member (
    organization_id uuid not null references organization (organization_id) on delete cascade,
    group_id        uuid not null,
    member_id       uuid not null,
    member_type     text not null,
    primary key (organization_id, group_id, member_id)
);
create index inventory_group_member_member_idx on inventory_group_member (organization_id, member_id);

create table inventory_role (
    organization_id  uuid not null references organization (organization_id) on delete cascade,
    role_id          uuid not null,
    role_template_id uuid,
    display_name     text,
    primary key (organization_id, role_id)
);

create table inventory_role_member (
    organization_id uuid not null references organization (organization_id) on delete cascade,
    role_id         uuid not null,
    member_id       uuid not null,
    member_type     text not null,
    primary key (organization_id, role_id, member_id)
);
create index inventory_role_member_member_idx on inventory_role_member (organization_id, member_id);

-- Sections that are listed, not searched: organization, domains, service principals,
-- subscribed SKUs, managed devices, risky users. Kept as Graph returned them ($select).
create table inventory_object (
    organization_id uuid not null references organization (organization_id) on delete cascade,
    section         text not null,
    object_id       text not null,
    display_name    text,
    data            jsonb not null,
    primary key (organization_id, section, object_id)
);
