-- The groups an employee may add themselves to through self-service `grant_access`
-- (none by default: an open list would let anyone join any group).
alter table action_policy
    add column self_service_groups uuid[] not null default '{}'
        check (cardinality(self_service_groups) <= 100);
