//! The wire shape of an action, as every action endpoint answers it.

use serde_json::{Value, json};
use tenantry_store::actions::{ActionRecord, StepRecord};
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(serde::Serialize, ToSchema)]
pub struct ActionView {
    pub id: Uuid,
    pub organization_id: Uuid,
    pub action: String,
    /// `pending_approval`, `approved`, `denied`, `expired`, `queued`, `running`,
    /// `succeeded`, `failed` or `partially_succeeded`.
    pub state: String,
    #[schema(value_type = Vec<Object>)]
    pub targets: Value,
    #[schema(value_type = Object)]
    pub parameters: Value,
    #[schema(value_type = Object)]
    pub requester: Value,
    #[schema(value_type = Object)]
    pub approval: Value,
    #[schema(value_type = Vec<Object>)]
    pub privileged_targets: Value,
    pub job_id: Option<Uuid>,
    /// `code` and `message` of a failure; `null` otherwise.
    #[schema(value_type = Option<Object>)]
    pub error: Value,
    /// Whether a generated password waits for its one reveal.
    pub password_available: bool,
    /// Each Graph step with its status and Microsoft's request id; `null` in lists.
    #[schema(value_type = Option<Vec<Object>>)]
    pub steps: Value,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
    pub finished_at: Option<chrono::DateTime<chrono::Utc>>,
}

pub(super) fn view(record: ActionRecord, steps: Option<Vec<StepRecord>>) -> ActionView {
    let password_available = record.password_available();
    ActionView {
        id: record.action_id.as_uuid(),
        organization_id: record.organization_id.as_uuid(),
        action: record.action,
        state: record.state.as_str().to_owned(),
        targets: record.targets,
        parameters: record.parameters,
        requester: json!({
            "kind": record.requester_kind,
            "api_key_id": record.requested_by_key,
            "requested_by": record.requested_by,
            "operator": record.requested_by_operator.map(|id| json!({"id": id, "name": record.requested_by_operator_name})),
        }),
        approval: json!({
            "required": record.approval_required,
            "reason": record.approval_reason,
            "approvers": {"roles": record.approver_roles, "keys": record.approver_keys, "groups": record.approver_groups},
            "expires_at": record.expires_at,
            "decided_by_key": record.decided_by_key,
            "decided_by": record.decided_by,
            "decided_by_operator": record.decided_by_operator.map(|id| json!({"id": id, "name": record.decided_by_operator_name})),
            "decided_at": record.decided_at,
            "reason_given": record.decision_reason,
        }),
        privileged_targets: record.privileged_targets,
        job_id: record.job_id.map(Uuid::from),
        error: match record.error_code {
            Some(code) => json!({"code": code, "message": record.error_message}),
            None => Value::Null,
        },
        password_available,
        steps: steps.map_or(Value::Null, |s| json!(s)),
        created_at: record.created_at,
        updated_at: record.updated_at,
        finished_at: record.finished_at,
    }
}
