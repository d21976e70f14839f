-- The credential's kind and certificate thumbprint, kept on the organization row beside
-- secret_expires_at, so that the organization list and view read one table: joined to
-- organization_credential, the list cost a third of its rate (50 more index probes a
-- page). Written with the credential, in the same statement (credentials::store).
alter table organization
    add column credential_type text check (credential_type in ('secret', 'certificate')),
    add column certificate_thumbprint text;

update organization o
   set credential_type = c.kind, certificate_thumbprint = c.certificate_thumbprint
  from organization_credential c
 where c.organization_id = o.organization_id;
