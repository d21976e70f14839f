-- MSPs (Tenantry's customers), their organizations and their API keys.
--
-- Isolation is enforced by the schema as well as the code: every row that belongs to an
-- MSP carries msp_id, and links between MSP-owned rows use composite foreign keys that
-- include msp_id, so a key of one MSP can never be linked to another MSP's organization.

create table msp (
    msp_id     uuid primary key,
    name       text not null check (char_length(name) between 1 and 100),
    created_at timestamptz not null default now()
);

-- Filled in by the "add a tenant" capability; present now so API keys can be limited to
-- organizations from the start.
create table organization (
    organization_id uuid primary key,
    msp_id          uuid not null references msp (msp_id) on delete cascade,
    name            text not null check (char_length(name) between 1 and 100),
    created_at      timestamptz not null default now(),
    unique (msp_id, organization_id)
);

create table api_key (
    api_key_id    uuid primary key,
    msp_id        uuid not null references msp (msp_id) on delete cascade,
    -- The public part of the key (tnty_<key_id>_<secret>), used to find the record.
    key_id        text not null unique check (key_id ~ '^[0-9a-f]{16}$'),
    -- HMAC-SHA-256(pepper, key_id || 0x00 || secret); the secret itself is never stored.
    secret_hmac   bytea not null check (octet_length(secret_hmac) = 32),
    name          text not null check (char_length(name) between 1 and 100),
    role          text not null check (role in ('owner', 'admin', 'technician', 'viewer')),
    -- false: every organization of the MSP; true: only those in api_key_organization.
    limited       boolean not null default false,
    created_by    uuid references api_key (api_key_id) on delete set null,
    created_at    timestamptz not null default now(),
    last_used_at  timestamptz,
    revoked_at    timestamptz,
    unique (msp_id, api_key_id)
);

create index api_key_msp_idx on api_key (msp_id, api_key_id);

create table api_key_organization (
    msp_id          uuid not null,
    api_key_id      uuid not null,
    organization_id uuid not null,
    primary key (api_key_id, organization_id),
    foreign key (msp_id, api_key_id) references api_key (msp_id, api_key_id) on delete cascade,
    foreign key (msp_id, organization_id) references organization (msp_id, organization_id) on delete cascade
);
