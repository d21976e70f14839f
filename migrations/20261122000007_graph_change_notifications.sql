-- Microsoft Graph change notifications: per organization (opt-in), subscriptions on users
-- and groups whose notifications trigger delta discovery (docs/webhooks.md).

alter table organization add column change_notifications boolean not null default false;

-- The clientState Graph echoes in every notification, sealed by the organization's data
-- key; one per organization, shared by its subscriptions.
create table graph_notification_secret (
    organization_id     uuid primary key references organization (organization_id) on delete cascade,
    sealed_client_state bytea not null,
    created_at          timestamptz not null default now()
);

create table graph_subscription (
    subscription_id text primary key,
    organization_id uuid not null references organization (organization_id) on delete cascade,
    resource        text not null check (resource in ('users', 'groups')),
    expires_at      timestamptz not null,
    -- When the leader queues the renewal: a day before expiry, minus jitter.
    renew_at        timestamptz not null,
    created_at      timestamptz not null default now(),
    renewed_at      timestamptz,
    unique (organization_id, resource)
);
create index graph_subscription_renew_idx on graph_subscription (renew_at);

-- Notifications received (after their clientState matched), for the record and for
-- counting; the inventory itself is refreshed by delta discovery.
create table graph_notification (
    notification_id uuid primary key,
    organization_id uuid not null references organization (organization_id) on delete cascade,
    subscription_id text not null,
    change_type     text,
    resource        text,
    lifecycle_event text,
    received_at     timestamptz not null default now()
);
create index graph_notification_org_idx on graph_notification (organization_id, received_at desc);
