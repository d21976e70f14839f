-- Partner mode (issue #16): one multi-tenant app in the MSP's partner tenant, consented in
-- each customer tenant, with one credential for all of them.

-- A partner connection: the partner tenant, its multi-tenant app and the app's credential
-- (a client secret, or a certificate's private key), sealed by the MSP's data key
-- (`msp_data_key`) and bound by associated data to (connection, purpose, credential id).
-- `credential_id` changes with every rotation, so a customer's verification is saved
-- only for the credential it proved.
create table partner_connection (
    partner_connection_id  uuid primary key,
    msp_id                 uuid not null references msp (msp_id) on delete cascade,
    name                   text not null,
    tenant_id              uuid not null,
    client_id              uuid not null,
    credential_id          uuid not null,
    sealed_secret          bytea not null,
    credential_type        text not null check (credential_type in ('secret', 'certificate')),
    certificate_der        bytea,
    certificate_thumbprint text,
    certificate_not_before timestamptz,
    certificate_not_after  timestamptz,
    -- The credential's expiry as last known (a secret's from Entra, a certificate's own).
    secret_expires_at      timestamptz,
    -- What customers consent to: the Graph application permissions the MSP's
    -- organizations need, every one declared on the app (`requiredResourceAccess`).
    required_permissions   text[] not null,
    redirect_uris          text[] not null default '{}',
    app_display_name       text,
    last_synced_at         timestamptz,
    next_sync_at           timestamptz not null default now(),
    -- The last sync's failure, if it failed (cleared by the next success).
    sync_error             text,
    created_at             timestamptz not null default now(),
    updated_at             timestamptz not null default now(),
    constraint partner_connection_certificate_columns check (
        case credential_type
            when 'secret' then certificate_der is null and certificate_thumbprint is null
            else certificate_der is not null and certificate_thumbprint is not null
                and certificate_not_before is not null and certificate_not_after is not null
        end)
);
create unique index partner_connection_app_idx on partner_connection (msp_id, tenant_id, client_id);
create index partner_connection_msp_idx on partner_connection (msp_id, partner_connection_id);
create index partner_connection_due_idx on partner_connection (next_sync_at);

-- One customer of a partner connection: what the last GDAP sync found (its relationships,
-- verbatim but for the fields Tenantry uses) and what the last verification found in the
-- customer tenant (consent, permissions, directory roles). Badges are computed from these
-- columns when shown (tenantry_domain::partner), never stored.
create table partner_customer (
    partner_connection_id uuid not null references partner_connection (partner_connection_id) on delete cascade,
    tenant_id             uuid not null,
    msp_id                uuid not null references msp (msp_id) on delete cascade,
    display_name          text not null,
    relationships         jsonb not null default '[]',
    -- Whether the last sync listed the customer (a customer whose relationships all ended
    -- stays, so that its organization can say why it stopped working).
    listed                boolean not null default true,
    consent_state         text not null default 'unknown'
        check (consent_state in ('unknown', 'not_consented', 'declined', 'permissions_missing', 'propagating', 'complete')),
    missing_permissions   text[] not null default '{}',
    -- The app's directory roles in the customer and, per capability, the ones missing:
    -- the validation report's `directory_roles`, `directory_role_status` and `capabilities`.
    verification          jsonb,
    -- The credential the last verification proved (see partner_connection.credential_id).
    verified_credential_id uuid,
    verified_at           timestamptz,
    -- When a consent callback last said the admin consented (Microsoft then takes
    -- minutes to hours to show it: until verification sees it, the customer is
    -- `propagating`), and when one said the admin declined.
    consented_at          timestamptz,
    declined_at           timestamptz,
    declined_reason       text,
    created_at            timestamptz not null default now(),
    updated_at            timestamptz not null default now(),
    primary key (partner_connection_id, tenant_id)
);
create index partner_customer_msp_idx on partner_customer (msp_id, partner_connection_id, tenant_id);

-- Admin-consent links handed out: the `state` is a random 256-bit value of which only the
-- SHA-256 is kept, bound to the MSP, the connection and the customer, used once, and
-- worthless after `expires_at`. The callback finds its row by the hash; a forged, replayed,
-- expired or foreign state finds none and changes nothing.
create table consent_request (
    state_hash            bytea primary key,
    msp_id                uuid not null references msp (msp_id) on delete cascade,
    partner_connection_id uuid not null references partner_connection (partner_connection_id) on delete cascade,
    customer_tenant_id    uuid not null,
    expires_at            timestamptz not null,
    used_at               timestamptz,
    created_at            timestamptz not null default now()
);
create index consent_request_expiry_idx on consent_request (expires_at);

-- An organization in partner mode takes its credential from the connection; it keeps no
-- credential of its own. Moving it back to its own app registration stores one again
-- and clears the column. A connection deleted with `?force` leaves its organizations
-- without a credential (`needs_attention`, with the reason).
alter table organization
    add column partner_connection_id uuid references partner_connection (partner_connection_id) on delete set null,
    add column status_reason text;
create index organization_partner_idx on organization (partner_connection_id) where partner_connection_id is not null;
