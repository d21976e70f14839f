//! Action policies per organization: a row only where an owner changed the defaults
//! ([`Policy::default_for`]), so improving a default reaches every organization that kept
//! it.

use serde_json::json;
use sqlx::PgPool;
use tenantry_domain::actions::ActionKind;
use tenantry_domain::policy::{Approval, Approvers, Policy, PrivilegedGuard};
use tenantry_domain::{MspId, OrganizationId, Role};
use uuid::Uuid;

use crate::actions::Actor;
use crate::audit::{self, NewEvent};
use crate::error::StoreError;
use crate::inventory::CURRENT;

type PolicyRow = (
    bool,
    String,
    Vec<String>,
    Vec<Uuid>,
    Vec<Uuid>,
    bool,
    String,
    i32,
    Vec<Uuid>,
    bool,
);

fn from_row(row: PolicyRow) -> Result<Policy, StoreError> {
    let (
        enabled,
        approval,
        roles,
        keys,
        groups,
        self_service,
        guard,
        ttl,
        self_service_groups,
        outside_forwarding_approval,
    ) = row;
    let approval = match approval.as_str() {
        "none" => Approval::None,
        "required" => Approval::Required,
        other => return Err(StoreError::Corrupt(format!("policy approval {other:?}"))),
    };
    let privileged_guard = match guard.as_str() {
        "refuse" => PrivilegedGuard::Refuse,
        "require_approval" => PrivilegedGuard::RequireApproval,
        "off" => PrivilegedGuard::Off,
        other => return Err(StoreError::Corrupt(format!("policy guard {other:?}"))),
    };
    let roles = roles
        .iter()
        .map(|r| r.parse::<Role>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
    Ok(Policy {
        enabled,
        approval,
        approvers: Approvers {
            roles,
            keys,
            groups,
        },
        self_service,
        privileged_guard,
        approval_ttl_secs: ttl,
        self_service_groups,
        outside_forwarding_approval,
    })
}

/// The policy in force for `kind` in `organization` (which the caller has checked).
pub(crate) async fn get(
    db: &PgPool,
    organization: OrganizationId,
    kind: ActionKind,
) -> Result<(Policy, bool), StoreError> {
    let row: Option<PolicyRow> = sqlx::query_as(
        "select enabled, approval, approver_roles, approver_keys, approver_groups, self_service,
                privileged_guard, approval_ttl_secs, self_service_groups, outside_forwarding_approval
         from action_policy where organization_id = $1 and action = $2",
    )
    .bind(organization.as_uuid())
    .bind(kind.as_str())
    .fetch_optional(db)
    .await?;
    match row {
        Some(row) => Ok((from_row(row)?, false)),
        None => Ok((Policy::default_for(kind), true)),
    }
}

/// Saves `policy` and records the change in the audit log, in one transaction.
pub(crate) async fn put(
    db: &PgPool,
    msp: MspId,
    organization: OrganizationId,
    kind: ActionKind,
    policy: &Policy,
    actor: &Actor,
) -> Result<(), StoreError> {
    let (before, _) = get(db, organization, kind).await?;
    let mut tx = db.begin().await?;
    sqlx::query(
        "insert into action_policy (msp_id, organization_id, action, enabled, approval, approver_roles,
             approver_keys, approver_groups, self_service, privileged_guard, approval_ttl_secs, updated_by,
             self_service_groups, outside_forwarding_approval)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
         on conflict (organization_id, action) do update set
             enabled = excluded.enabled, approval = excluded.approval,
             approver_roles = excluded.approver_roles, approver_keys = excluded.approver_keys,
             approver_groups = excluded.approver_groups, self_service = excluded.self_service,
             privileged_guard = excluded.privileged_guard, approval_ttl_secs = excluded.approval_ttl_secs,
             self_service_groups = excluded.self_service_groups,
             outside_forwarding_approval = excluded.outside_forwarding_approval,
             updated_by = excluded.updated_by, updated_at = now()",
    )
    .bind(msp.as_uuid())
    .bind(organization.as_uuid())
    .bind(kind.as_str())
    .bind(policy.enabled)
    .bind(policy.approval.as_str())
    .bind(
        policy
            .approvers
            .roles
            .iter()
            .map(|r| r.as_str().to_owned())
            .collect::<Vec<_>>(),
    )
    .bind(&policy.approvers.keys)
    .bind(&policy.approvers.groups)
    .bind(policy.self_service)
    .bind(policy.privileged_guard.as_str())
    .bind(policy.approval_ttl_secs)
    .bind(actor.api_key_id)
    .bind(&policy.self_service_groups)
    .bind(policy.outside_forwarding_approval)
    .execute(&mut *tx)
    .await?;
    audit::append(
        &mut tx,
        msp,
        NewEvent {
            kind: "policy.updated",
            actor: actor.audit(),
            organization_id: Some(organization.as_uuid()),
            action: Some(kind.as_str().into()),
            parameters: json!({"before": before, "after": policy}),
            decision: Some("updated".into()),
            ..NewEvent::default()
        },
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// The approvers a policy names that could never decide a request in `organization`, as
/// (keys, groups): keys that are not active, non-gateway keys of `msp` seeing the
/// organization (a gateway decides only for members of approver groups); groups that are
/// not in the organization's current inventory (approver groups are Entra group object
/// ids, matched against inventory membership).
pub(crate) async fn unusable_approvers(
    db: &PgPool,
    msp: MspId,
    organization: OrganizationId,
    approvers: &Approvers,
) -> Result<(Vec<Uuid>, Vec<Uuid>), StoreError> {
    let keys: Vec<Uuid> = sqlx::query_scalar(
        "select k from unnest($3::uuid[]) with ordinality as t(k, n)
         where not exists (
             select 1 from api_key a
             where a.api_key_id = t.k and a.msp_id = $1 and a.revoked_at is null
               and a.role <> 'self_service_gateway'
               and (not a.limited or exists (select 1 from api_key_organization o
                    where o.api_key_id = a.api_key_id and o.organization_id = $2)))
         order by n",
    )
    .bind(msp.as_uuid())
    .bind(organization.as_uuid())
    .bind(&approvers.keys)
    .fetch_all(db)
    .await?;
    let sql = format!(
        "select g from unnest($2::uuid[]) with ordinality as t(g, n)
         where not exists (
             select 1 from inventory_group i
             where i.organization_id = $1 and i.generation = {CURRENT} and i.group_id = t.g)
         order by n"
    );
    let groups: Vec<Uuid> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .bind(organization.as_uuid())
        .bind(&approvers.groups)
        .fetch_all(db)
        .await?;
    Ok((keys, groups))
}
