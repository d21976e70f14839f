-- Certificate credentials (issue #16): an organization's credential is a client secret or
-- a certificate. For a certificate, `sealed_secret` holds its RSA private key (PKCS#8 PEM),
-- sealed by the organization's data key exactly as a secret is (purpose
-- `certificate-private-key`, bound to the credential id); the certificate itself is public
-- and kept in the clear, with what is read from it once: its SHA-256 thumbprint (base64url,
-- the assertions' `x5t#S256`) and its validity.
alter table organization_credential
    add column kind text not null default 'secret' check (kind in ('secret', 'certificate')),
    add column certificate_der bytea,
    add column certificate_thumbprint text,
    add column certificate_not_before timestamptz,
    add column certificate_not_after timestamptz,
    add constraint organization_credential_certificate_columns check (
        case kind
            when 'secret' then certificate_der is null and certificate_thumbprint is null
                and certificate_not_before is null and certificate_not_after is null
            else certificate_der is not null and certificate_thumbprint is not null
                and certificate_not_before is not null and certificate_not_after is not null
        end);

-- Key pairs Tenantry generated for an MSP, waiting for the MSP to register the certificate
-- on an app in Entra and then to connect (or rotate) a tenant with it. The private key is
-- sealed by the MSP's data key (`msp_data_key`, purpose `certificate-private-key`, bound to
-- the certificate id), never shown, and moved into the organization's credential (sealed
-- again under the organization's data key) in the same transaction that deletes this row:
-- each generated key serves one credential.
create table generated_certificate (
    certificate_id     uuid primary key,
    msp_id             uuid not null references msp (msp_id) on delete cascade,
    sealed_private_key bytea not null,
    certificate_der    bytea not null,
    thumbprint         text not null,
    not_before         timestamptz not null,
    not_after          timestamptz not null,
    created_at         timestamptz not null default now()
);
create index generated_certificate_msp_idx on generated_certificate (msp_id, certificate_id);
