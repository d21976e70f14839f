-- Signed inbound webhooks that trigger remediation playbooks (docs/webhooks.md).

-- An MSP's own data key, for secrets that belong to the MSP rather than to one
-- organization (webhook signing secrets of MSP-wide endpoints). Sealed by the master key
-- like organizations' data keys, and re-sealed by the same rotation.
create table msp_data_key (
    msp_id          uuid primary key references msp (msp_id) on delete cascade,
    sealed          bytea not null,
    master_key_id   text not null,
    created_at      timestamptz not null default now()
);

create table webhook_endpoint (
    endpoint_id             uuid primary key,
    msp_id                  uuid not null references msp (msp_id) on delete cascade,
    -- Null: the endpoint serves every organization of the MSP (events name theirs).
    organization_id         uuid references organization (organization_id) on delete cascade,
    name                    text not null check (char_length(name) between 1 and 100),
    -- The signing secret, sealed by the MSP's data key and bound to the endpoint id.
    sealed_secret           bytea not null,
    -- During a rotation, the previous secret still verifies until it expires.
    previous_sealed_secret  bytea,
    previous_expires_at     timestamptz,
    -- [{"event", "actions": [...], "approval": "policy" | "none"}]
    rules                   jsonb not null,
    created_by              uuid not null,
    created_at              timestamptz not null default now(),
    revoked_at              timestamptz
);
create index webhook_endpoint_msp_idx on webhook_endpoint (msp_id, endpoint_id desc);

create table webhook_event (
    webhook_event_id    uuid primary key,
    endpoint_id         uuid not null references webhook_endpoint (endpoint_id) on delete cascade,
    msp_id              uuid not null references msp (msp_id) on delete cascade,
    organization_id     uuid references organization (organization_id) on delete cascade,
    -- The sender's id: a replay of the same id is answered from the first delivery.
    event_id            text not null check (char_length(event_id) between 1 and 200),
    event_type          text not null,
    target              text,
    payload             jsonb not null,
    state               text not null check (state in ('accepted', 'running', 'waiting_for_approval',
                            'completed', 'failed', 'ignored')),
    -- One entry per playbook step: {"action", "action_id", "state"} or {"action", "code", "detail"}.
    outcome             jsonb not null default '[]',
    job_id              uuid,
    received_at         timestamptz not null default now(),
    finished_at         timestamptz,
    unique (endpoint_id, event_id)
);
create index webhook_event_msp_idx on webhook_event (msp_id, webhook_event_id desc);

-- Actions a webhook asked for name their delivery, so deciding one resumes its playbook.
alter table action_request drop constraint action_request_requester_kind_check;
alter table action_request add constraint action_request_requester_kind_check
    check (requester_kind in ('technician', 'employee', 'webhook'));
alter table action_request add column webhook_event_id uuid;
