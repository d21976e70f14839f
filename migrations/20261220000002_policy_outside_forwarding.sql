-- set_mailbox_forwarding to an address outside the organization waits for an approval
-- unless the organization's owner turns this off for that action.
alter table action_policy add column outside_forwarding_approval boolean not null default true;
