-- Scans write the inventory once. A discovery of 200 tenants writes about a million rows;
-- measured on 100,000 users (docs/jobs.md, "What a scan costs"), staging every page as JSON
-- and copying it into the inventory at the end cost as much again as the inventory itself,
-- and the foreign-key check PostgreSQL runs for every inserted row was a quarter of the rest.
--
-- 1. Generations. Every inventory row carries the run that wrote it. A full run writes its
--    pages straight into its own generation while readers keep reading the organization's
--    `inventory_generation`; applying the run switches that pointer and drops the previous
--    generation in one transaction, so readers still never see half a run. A delta run
--    writes into its own generation too and is merged into the current one when applied.
--    Readers ask for `generation = organization.inventory_generation`, so the primary keys
--    below serve their lookups and their order.
alter table organization
    add column inventory_generation uuid not null default '00000000-0000-0000-0000-000000000000';

alter table inventory_user
    add column generation uuid not null default '00000000-0000-0000-0000-000000000000',
    drop constraint inventory_user_pkey,
    add primary key (organization_id, generation, user_id);
alter table inventory_group
    add column generation uuid not null default '00000000-0000-0000-0000-000000000000',
    drop constraint inventory_group_pkey,
    add primary key (organization_id, generation, group_id);
alter table inventory_group_member
    add column generation uuid not null default '00000000-0000-0000-0000-000000000000',
    drop constraint inventory_group_member_pkey,
    add primary key (organization_id, generation, group_id, member_id);
alter table inventory_role
    add column generation uuid not null default '00000000-0000-0000-0000-000000000000',
    drop constraint inventory_role_pkey,
    add primary key (organization_id, generation, role_id);
alter table inventory_role_member
    add column generation uuid not null default '00000000-0000-0000-0000-000000000000',
    drop constraint inventory_role_member_pkey,
    add primary key (organization_id, generation, role_id, member_id);
alter table inventory_object
    add column generation uuid not null default '00000000-0000-0000-0000-000000000000',
    drop constraint inventory_object_pkey,
    add primary key (organization_id, generation, section, object_id);

-- The staging area keeps only what is not inventory: removals and refreshed groups of
-- delta runs, delta links. A run's generation is dropped when it fails or is closed.

-- 2. No foreign-key check per row. Inventory rows are written only by a run, whose
--    organization and MSP the run's apply checks under a lock on the organization row, and
--    by actions on an organization read in the caller's scope; staged rows only by the run
--    that owns them. What the foreign keys still did, removing rows with their organization
--    or run, the triggers below do, once per deleted organization or run.
alter table discovery_stage drop constraint discovery_stage_run_id_fkey;
alter table inventory_user drop constraint inventory_user_msp_id_organization_id_fkey;
alter table inventory_group drop constraint inventory_group_msp_id_organization_id_fkey;
alter table inventory_group_member drop constraint inventory_group_member_organization_id_fkey;
alter table inventory_role drop constraint inventory_role_organization_id_fkey;
alter table inventory_role_member drop constraint inventory_role_member_organization_id_fkey;
alter table inventory_object drop constraint inventory_object_organization_id_fkey;

create function remove_organization_inventory() returns trigger language plpgsql as $$
begin
    delete from inventory_user where organization_id = old.organization_id;
    delete from inventory_group where organization_id = old.organization_id;
    delete from inventory_group_member where organization_id = old.organization_id;
    delete from inventory_role where organization_id = old.organization_id;
    delete from inventory_role_member where organization_id = old.organization_id;
    delete from inventory_object where organization_id = old.organization_id;
    return old;
end
$$;
create trigger organization_inventory_removed after delete on organization
    for each row execute function remove_organization_inventory();

create function remove_run_stage() returns trigger language plpgsql as $$
begin
    delete from discovery_stage where run_id = old.run_id;
    return old;
end
$$;
create trigger discovery_run_stage_removed after delete on discovery_run
    for each row execute function remove_run_stage();

-- 3. Trigram entries wait in the index's pending list and are merged in bulk; a 16 MB list
--    (4 MB by default) merges a tenant of 20,000 users at once instead of in five rounds.
--    Searches read the pending list too, and autovacuum empties it.
alter index inventory_user_search_idx set (gin_pending_list_limit = 16384);
alter index inventory_group_search_idx set (gin_pending_list_limit = 16384);
