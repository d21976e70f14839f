-- Organizations become Microsoft 365 tenants with sealed credentials.
alter table organization
    add column provider text not null default 'microsoft365' check (provider = 'microsoft365'),
    add column tenant_id uuid,
    add column client_id uuid,
    add column status text not null default 'connected'
        check (status in ('connected', 'needs_attention', 'credentials_invalid', 'secret_expiring')),
    add column validation_report jsonb,
    add column validated_at timestamptz,
    add column updated_at timestamptz not null default now();

-- A Microsoft 365 tenant is bound to at most one organization in the whole service.
create unique index organization_tenant_bound_idx on organization (tenant_id) where tenant_id is not null;
create index organization_msp_idx on organization (msp_id, organization_id);

-- Each organization's data key, sealed by the master key. Deleting the organization
-- deletes the key, and with it any way to read its secrets (crypto-shredding).
create table organization_data_key (
    organization_id uuid primary key references organization (organization_id) on delete cascade,
    sealed          bytea not null,
    master_key_id   text not null,
    created_at      timestamptz not null default now()
);

-- The client secret in use, sealed by the organization's data key and bound to
-- (organization, purpose, credential id) by associated data.
create table organization_credential (
    organization_id uuid primary key references organization (organization_id) on delete cascade,
    credential_id   uuid not null,
    sealed_secret   bytea not null,
    updated_at      timestamptz not null default now()
);
