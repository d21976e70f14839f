-- Every change to a webhook endpoint (rotation, revocation, deletion, cascades from a
-- deleted organization or MSP) notifies `tenantry_webhook_endpoints` with its id, in the
-- changing transaction, so every API process evicts its cached copy when it commits
-- (crates/tenantry-store/src/endpoint_cache.rs).
create function webhook_endpoint_changed() returns trigger
    language plpgsql as $$
begin
    perform pg_notify('tenantry_webhook_endpoints', old.endpoint_id::text);
    return null;
end
$$;

create trigger webhook_endpoint_changed
    after update or delete on webhook_endpoint
    for each row execute function webhook_endpoint_changed();
