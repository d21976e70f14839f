-- Identity actions behind policies and approvals, their Graph steps, the one-time
-- password vault, and the hash-chained audit log (docs/actions.md).

-- A trusted self-service gateway (an intranet portal, a chat bot) acts for employees.
alter table api_key drop constraint api_key_role_check;
alter table api_key add constraint api_key_role_check
    check (role in ('owner', 'admin', 'technician', 'viewer', 'self_service_gateway'));

-- One row per organization and action that an owner changed; absent rows mean defaults.
create table action_policy (
    msp_id              uuid not null,
    organization_id     uuid not null,
    action              text not null check (char_length(action) between 1 and 64),
    enabled             boolean not null,
    approval            text not null check (approval in ('none', 'required')),
    approver_roles      text[] not null,
    approver_keys       uuid[] not null,
    approver_groups     uuid[] not null,
    self_service        boolean not null,
    privileged_guard    text not null check (privileged_guard in ('refuse', 'require_approval', 'off')),
    approval_ttl_secs   integer not null check (approval_ttl_secs between 300 and 2592000),
    updated_at          timestamptz not null default now(),
    updated_by          uuid not null,
    primary key (organization_id, action),
    foreign key (msp_id, organization_id) references organization (msp_id, organization_id) on delete cascade
);

create table action_request (
    action_id           uuid primary key,
    msp_id              uuid not null,
    organization_id     uuid not null,
    action              text not null,
    state               text not null check (state in ('pending_approval', 'approved', 'denied', 'expired',
                            'queued', 'running', 'succeeded', 'failed', 'partially_succeeded')),
    -- Resolved targets: [{"id", "user_principal_name", "display_name"}]; one for most actions.
    targets             jsonb not null,
    -- Validated parameters; never a secret (passwords are generated at execution).
    parameters          jsonb not null,
    -- Ids the request's references resolved to: {"group_id", "manager_id"}.
    resolved            jsonb not null default '{}',
    -- A photo's bytes (update_photo), kept out of `parameters` and the audit log.
    attachment          bytea,
    requested_by_key    uuid not null,
    -- 'technician' (an API key's holder), 'employee' (self-service through a gateway key).
    requester_kind      text not null check (requester_kind in ('technician', 'employee')),
    -- Who asked, as the caller said: a technician's name or the employee's user id.
    requested_by        text,
    idempotency_key     text check (char_length(idempotency_key) between 1 and 255),
    request_hash        bytea,
    privileged_targets  jsonb not null default '[]',
    approval_required   boolean not null,
    approval_reason     text,
    approver_roles      text[] not null default '{}',
    approver_keys       uuid[] not null default '{}',
    approver_groups     uuid[] not null default '{}',
    expires_at          timestamptz,
    decided_by_key      uuid,
    decided_by          text,
    decided_at          timestamptz,
    decision_reason     text,
    job_id              uuid,
    error_code          text,
    error_message       text,
    created_at          timestamptz not null default now(),
    updated_at          timestamptz not null default now(),
    finished_at         timestamptz,
    foreign key (msp_id, organization_id) references organization (msp_id, organization_id) on delete cascade
);
create unique index action_request_idempotency_idx
    on action_request (msp_id, requested_by_key, idempotency_key) where idempotency_key is not null;
create index action_request_msp_idx on action_request (msp_id, action_id desc);
create index action_request_pending_idx on action_request (expires_at) where state = 'pending_approval';

-- Each Graph call of an action, recorded before it is sent and after it answers, so a
-- retry resumes after the last completed step and never sends a non-idempotent one twice.
create table action_step (
    action_id           uuid not null references action_request (action_id) on delete cascade,
    position            integer not null check (position >= 0),
    name                text not null,
    method              text not null,
    path                text not null,
    idempotent          boolean not null,
    state               text not null check (state in ('pending', 'sent', 'succeeded', 'failed', 'unknown')),
    http_status         integer,
    ms_request_id       text,
    error_code          text,
    error_message       text,
    detail              jsonb,
    started_at          timestamptz,
    finished_at         timestamptz,
    primary key (action_id, position)
);

-- A generated password, sealed by the organization's data key, until revealed once or
-- 24 hours pass. Deleting the row is the shredding: the plaintext never existed elsewhere.
create table action_secret (
    action_id           uuid primary key references action_request (action_id) on delete cascade,
    organization_id     uuid not null references organization (organization_id) on delete cascade,
    sealed              bytea not null,
    created_at          timestamptz not null default now(),
    expires_at          timestamptz not null
);
create index action_secret_expiry_idx on action_secret (expires_at);

-- Append-only, chained by SHA-256 per MSP: each event stores the previous event's hash,
-- and its own hash covers its content and that link. Organizations may be deleted; their
-- events stay, so the chain stays whole.
create table audit_event (
    msp_id              uuid not null references msp (msp_id) on delete cascade,
    seq                 bigint not null check (seq >= 1),
    event_id            uuid not null unique,
    occurred_at         timestamptz not null,
    kind                text not null,
    actor               jsonb not null,
    organization_id     uuid,
    action_id           uuid,
    action              text,
    targets             jsonb not null default '[]',
    parameters          jsonb not null default '{}',
    decision            text,
    reason              text,
    graph_request_ids   text[] not null default '{}',
    prev_hash           bytea not null,
    hash                bytea not null,
    primary key (msp_id, seq)
);
create index audit_event_organization_idx on audit_event (msp_id, organization_id, seq);
create index audit_event_action_idx on audit_event (action_id) where action_id is not null;
