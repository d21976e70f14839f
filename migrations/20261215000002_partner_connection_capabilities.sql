-- The capabilities a partner connection's organizations need (issue #16): the consent
-- scope is their required permissions, and customers are verified against them.
-- `null`: every capability (the default required set).
alter table partner_connection add column capabilities text[];
