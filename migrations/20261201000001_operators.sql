-- Operators: the people who hold an MSP's API keys (docs/architecture.md, "Operators").
-- Four eyes compares people, not keys: a key minted by a key belongs to the minting key's
-- operator, so a second key of one person cannot approve that person's request.
--
-- Not to be confused with the service operator of `tenantry admin` (Store::operator()),
-- who stands outside every MSP.

create table operator (
    operator_id     uuid primary key,
    msp_id          uuid not null references msp (msp_id) on delete cascade,
    -- A person's name or email address, as whoever created the operator gave it.
    name            text not null check (char_length(name) between 1 and 100),
    -- The key that created this operator (an owner's); null for the operator CLI and for
    -- operators made by this migration.
    created_by_key  uuid,
    created_at      timestamptz not null default now(),
    unique (msp_id, operator_id)
);

alter table api_key add column operator_id uuid;

-- Existing keys: one operator per key. Nobody knows which keys one person holds, and
-- treating every key as its own person keeps every approval that worked before working.
-- The operator reuses the key's id, so the mapping is plain to see afterwards.
insert into operator (operator_id, msp_id, name, created_at)
select api_key_id, msp_id, left(name, 70) || ' (key ' || key_id || ')', created_at
from api_key;
update api_key set operator_id = api_key_id;

alter table api_key alter column operator_id set not null;
alter table api_key add constraint api_key_operator_fk
    foreign key (msp_id, operator_id) references operator (msp_id, operator_id);
create index api_key_operator_idx on api_key (msp_id, operator_id);

-- Who asked and who decided, as people: the operator of the key that asked or decided
-- (null for webhook endpoints, and for employees deciding through a gateway the
-- operator is that of the gateway key).
alter table action_request add column requested_by_operator uuid;
alter table action_request add column decided_by_operator uuid;
update action_request a set requested_by_operator = k.operator_id
from api_key k where k.msp_id = a.msp_id and k.api_key_id = a.requested_by_key;
update action_request a set decided_by_operator = k.operator_id
from api_key k where k.msp_id = a.msp_id and k.api_key_id = a.decided_by_key;
alter table action_request add constraint action_request_requested_by_operator_fk
    foreign key (msp_id, requested_by_operator) references operator (msp_id, operator_id);
alter table action_request add constraint action_request_decided_by_operator_fk
    foreign key (msp_id, decided_by_operator) references operator (msp_id, operator_id);
