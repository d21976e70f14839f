-- A step of a playbook action (offboarding) that the tenant has not granted the
-- capability for is recorded, never sent: `skipped`, with the reason in error_message.
alter table action_step drop constraint action_step_state_check;
alter table action_step add constraint action_step_state_check
    check (state in ('pending', 'sent', 'succeeded', 'failed', 'unknown', 'skipped'));
