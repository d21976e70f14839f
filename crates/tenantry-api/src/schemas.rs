//! Documented shapes of answers whose rows come from other crates (the inventory, the
//! validation report, the audit chain, dry-run plans), which have no `ToSchema` of their
//! own: the store and graph crates do not depend on utoipa. Each struct mirrors exactly
//! what the handler serializes; the schemathesis test (`tests/schemathesis.rs`) checks
//! every answer against these schemas, so a drift fails the suite.

#![allow(dead_code)]

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::routes::actions::ActionView;

/// A user of the organization's directory, as the last discovery run read it.
#[derive(Serialize, ToSchema)]
pub struct InventoryUser {
    /// The user's object id in Entra.
    pub id: Uuid,
    pub display_name: Option<String>,
    pub user_principal_name: Option<String>,
    pub mail: Option<String>,
    pub department: Option<String>,
    pub job_title: Option<String>,
    /// `false` for a disabled ("locked") account.
    pub account_enabled: Option<bool>,
    pub office_location: Option<String>,
    /// Graph's `businessPhones`, as Graph returned them.
    pub business_phones: Option<Value>,
    pub mobile_phone: Option<String>,
    pub usage_location: Option<String>,
    /// Whether the account is synchronised from on-premises Active Directory.
    pub on_premises_sync_enabled: Option<bool>,
    /// The SKU ids of the user's licences.
    pub assigned_licenses: Vec<Uuid>,
}

/// A user with the groups and directory roles they hold.
#[derive(Serialize, ToSchema)]
pub struct InventoryUserDetail {
    /// The user's object id in Entra.
    pub id: Uuid,
    pub display_name: Option<String>,
    pub user_principal_name: Option<String>,
    pub mail: Option<String>,
    pub department: Option<String>,
    pub job_title: Option<String>,
    pub account_enabled: Option<bool>,
    pub office_location: Option<String>,
    pub business_phones: Option<Value>,
    pub mobile_phone: Option<String>,
    pub usage_location: Option<String>,
    pub on_premises_sync_enabled: Option<bool>,
    /// The SKU ids of the user's licences.
    pub assigned_licenses: Vec<Uuid>,
    /// The groups the user is a direct member of.
    pub groups: Vec<InventoryGroup>,
    /// The activated directory roles the user holds.
    pub roles: Vec<InventoryRole>,
}

/// A group of the organization's directory.
#[derive(Serialize, ToSchema)]
pub struct InventoryGroup {
    /// The group's object id in Entra.
    pub id: Uuid,
    pub display_name: Option<String>,
    pub mail: Option<String>,
    /// `security`, `m365` or `distribution`.
    pub kind: String,
    pub description: Option<String>,
    /// Direct members.
    pub member_count: i64,
}

/// An activated directory role.
#[derive(Serialize, ToSchema)]
pub struct InventoryRole {
    /// The role's object id in the tenant.
    pub id: Uuid,
    /// The role's template id (the same in every tenant).
    pub role_template_id: Option<Uuid>,
    pub display_name: Option<String>,
}

/// A member of a group or directory role.
#[derive(Serialize, ToSchema)]
pub struct GroupMember {
    /// The member's object id.
    pub id: Uuid,
    /// Graph's type of the member, e.g. `user`, `group`, `servicePrincipal`, `device`.
    #[serde(rename = "type")]
    pub member_type: String,
    /// For users: their display name.
    pub display_name: Option<String>,
    /// For users: their UPN.
    pub user_principal_name: Option<String>,
}

/// An activated directory role with its members.
#[derive(Serialize, ToSchema)]
pub struct DirectoryRole {
    /// The role's object id in the tenant.
    pub id: Uuid,
    /// The role's template id (the same in every tenant).
    pub role_template_id: Option<Uuid>,
    pub display_name: Option<String>,
    pub members: Vec<GroupMember>,
}

/// A user proposed as approver, with the approver roles they hold.
#[derive(Serialize, ToSchema)]
pub struct ApproverProposal {
    pub user_id: Uuid,
    pub display_name: Option<String>,
    pub user_principal_name: Option<String>,
    pub account_enabled: Option<bool>,
    /// Display names (or template ids) of the roles that make them a candidate.
    pub roles: Vec<String>,
}

/// A directory object of a listed section: a licence (subscribed SKU), an enterprise
/// application or a managed device.
#[derive(Serialize, ToSchema)]
pub struct InventoryObject {
    /// The object's id in Graph.
    pub id: String,
    pub display_name: Option<String>,
    /// The object as Graph returned it (its shape is Graph's, per section).
    #[schema(value_type = Object)]
    pub data: Value,
}

/// A subscribed SKU with its product name and seats.
#[derive(Serialize, ToSchema)]
pub struct LicenseObject {
    /// The SKU id.
    pub id: String,
    pub display_name: Option<String>,
    /// The product name (Microsoft's licensing reference), else the `skuPartNumber`.
    pub name: String,
    pub seats: LicenseSeats,
    /// The SKU as Graph returned it (`GET /subscribedSkus`).
    #[schema(value_type = Object)]
    pub data: Value,
}

/// A SKU's seats (`tenantry_domain::licences::Seats`).
#[derive(Serialize, ToSchema)]
pub struct LicenseSeats {
    /// `prepaidUnits.enabled`.
    pub purchased: i64,
    /// `consumedUnits`.
    pub assigned: i64,
    /// Purchased and not assigned.
    pub available: i64,
    /// More assigned than enabled (units in warning or suspended).
    pub over_assigned: bool,
    pub warning: i64,
    pub suspended: i64,
    pub locked_out: i64,
    /// Share of the purchased seats nobody uses, in percent.
    pub unused_percent: i64,
}

/// A list that is never paged (bounded by nature).
#[derive(Serialize, ToSchema)]
pub struct Listed<T: ToSchema> {
    pub data: Vec<T>,
}

/// Required, missing, extra and not-required items (permissions or directory roles).
#[derive(Serialize, ToSchema)]
pub struct GrantDiff {
    /// Required and granted.
    pub granted: Vec<String>,
    /// Required, not granted.
    pub missing: Vec<String>,
    /// Granted without being required.
    pub extra: Vec<String>,
    /// Known, neither required nor granted.
    pub not_required: Vec<String>,
}

/// What one capability (e.g. `password_reset`) can do in the tenant.
#[derive(Serialize, ToSchema)]
pub struct CapabilityStatus {
    pub capability: String,
    pub available: bool,
    /// Permissions to grant (one per unsatisfied group: the preferred alternative).
    pub missing_permissions: Vec<String>,
    /// Directory roles of which the service principal needs one, when it has none.
    pub missing_directory_role: Vec<String>,
    /// For `exchange`: what `Get-OrganizationConfig` said. `working`; `propagating`
    /// (everything is granted but Exchange still refuses: `available` is false and the
    /// organization is checked again at 1, 5, 15, 30, 60 and 120 minutes); `unknown`
    /// (Exchange did not answer). Absent for the other capabilities.
    #[schema(nullable = false)]
    pub live_check: Option<String>,
}

/// A directory role by its template id, with its display name (Graph's, else Entra's
/// built-in roles reference; none for a role neither knows).
#[derive(Serialize, ToSchema)]
pub struct NamedRole {
    pub id: String,
    pub name: Option<String>,
}

/// Required, missing, extra and not-required directory roles, each named.
#[derive(Serialize, ToSchema)]
pub struct NamedRoleDiff {
    /// Required and held.
    pub granted: Vec<NamedRole>,
    /// Required, not held.
    pub missing: Vec<NamedRole>,
    /// Held without being required.
    pub extra: Vec<NamedRole>,
    /// Known, neither required nor held.
    pub not_required: Vec<NamedRole>,
}

/// The app's client secret as Entra describes it (never its value).
#[derive(Serialize, ToSchema)]
pub struct SecretExpiry {
    pub key_id: Option<String>,
    /// The first characters of the secret, as Entra shows them.
    pub hint: Option<String>,
    pub expires_at: Option<DateTime<Utc>>,
    pub days_left: Option<i64>,
}

/// The certificate in use, from the certificate itself (never its key).
#[derive(Serialize, ToSchema)]
pub struct CertificateExpiry {
    /// SHA-256 thumbprint, base64url (the assertions' `x5t#S256`).
    pub thumbprint_s256: String,
    pub not_before: DateTime<Utc>,
    /// The certificate's notAfter; warned of 30 days ahead, as a secret's expiry is.
    pub expires_at: DateTime<Utc>,
    pub days_left: i64,
}

/// What Tenantry can and cannot do in a tenant, and why.
#[derive(Serialize, ToSchema)]
pub struct ValidationReport {
    pub tenant_id: Uuid,
    pub tenant_display_name: Option<String>,
    pub verified_domains: Vec<String>,
    /// The object id of the app's enterprise application in the tenant.
    pub service_principal_id: Uuid,
    /// Graph application permissions.
    pub permissions: GrantDiff,
    /// Directory roles the service principal holds: template id and display name.
    pub directory_roles: Vec<NamedRole>,
    /// Those roles compared with what the capabilities need.
    pub directory_role_status: NamedRoleDiff,
    pub capabilities: Vec<CapabilityStatus>,
    /// The client secret in use (secret credentials).
    pub secret: Option<SecretExpiry>,
    /// The certificate in use (certificate credentials).
    pub certificate: Option<CertificateExpiry>,
    /// What could not be checked.
    pub warnings: Vec<String>,
    pub checked_at: DateTime<Utc>,
}

/// A stored re-validation that failed: why, in words.
#[derive(Serialize, ToSchema)]
pub struct FailedValidation {
    pub failed: String,
}

/// The latest validation of an organization: a report, or why the last check failed.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
#[allow(clippy::large_enum_variant)]
pub enum StoredValidation {
    Report(ValidationReport),
    Failed(FailedValidation),
}

/// A generated password, revealed once.
#[derive(Serialize, ToSchema)]
pub struct RevealedPassword {
    pub action_id: Uuid,
    pub password: String,
    /// Always `true`: the user must choose a new password at the next sign-in.
    pub force_change_at_next_sign_in: bool,
}

/// What a request would do, without doing it (`"dry_run": true`).
#[derive(Serialize, ToSchema)]
pub struct DryRunPlan {
    /// Always `true`.
    pub dry_run: bool,
    pub action: String,
    pub organization_id: Uuid,
    /// The resolved target users.
    pub targets: Value,
    /// The parameters as they would be recorded (secrets left out).
    pub parameters: Value,
    /// `would_wait_for_approval` or `would_queue`.
    pub decision: String,
    /// Why approval would be needed, when it would.
    pub approval_reason: Option<String>,
    /// Targets holding a privileged directory role.
    pub privileged_targets: Value,
    /// The Graph calls, in order, that the action would make.
    pub steps: Value,
}

/// An action, or a dry run's plan.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
#[allow(clippy::large_enum_variant)]
pub enum ActionOrPlan {
    Action(ActionView),
    Plan(DryRunPlan),
}

/// An event of the MSP's hash-chained audit log.
#[derive(Serialize, ToSchema)]
pub struct AuditEvent {
    /// Position in the MSP's chain (also the list's cursor).
    pub seq: i64,
    pub event_id: Uuid,
    pub occurred_at: DateTime<Utc>,
    /// e.g. `action.requested`, `action.approved`, `policy.updated`.
    pub kind: String,
    /// Who did it: key, role, name.
    #[schema(value_type = Object)]
    pub actor: Value,
    pub organization_id: Option<Uuid>,
    pub action_id: Option<Uuid>,
    pub action: Option<String>,
    pub targets: Value,
    pub parameters: Value,
    pub decision: Option<String>,
    pub reason: Option<String>,
    /// Microsoft's request ids of the Graph calls made.
    pub graph_request_ids: Vec<String>,
    /// Hex SHA-256 of the previous event.
    pub prev_hash: String,
    /// Hex SHA-256 of this event, chained to the previous one.
    pub hash: String,
}

/// The first broken link of an audit chain.
#[derive(Serialize, ToSchema)]
pub struct BrokenLink {
    pub seq: i64,
    pub event_id: Uuid,
    /// `content_changed`, `link_broken` or `sequence_gap`.
    pub problem: String,
}

/// What walking the MSP's audit chain found.
#[derive(Serialize, ToSchema)]
pub struct AuditVerification {
    pub valid: bool,
    pub events_checked: i64,
    /// The hash of the last event: keep it elsewhere to detect the newest events being cut
    /// off, which no chain can show by itself.
    pub head_hash: Option<String>,
    pub first_broken: Option<BrokenLink>,
}

/// Who may approve an action.
#[derive(Serialize, ToSchema)]
pub struct PolicyApprovers {
    /// MSP roles (`owner`, `admin`, `technician`, `viewer`).
    pub roles: Vec<String>,
    /// Particular API keys (ids).
    pub keys: Vec<Uuid>,
    /// Approver groups of the organization (object ids), for self-service requests.
    pub groups: Vec<Uuid>,
}

/// What one action needs before it runs in an organization.
#[derive(Serialize, ToSchema)]
pub struct PolicyView {
    pub action: String,
    /// `true` while nobody changed it: the default policy.
    pub is_default: bool,
    /// Whether a self-service gateway may request this action at all.
    pub may_be_self_service: bool,
    pub enabled: bool,
    /// `none` or `required`.
    pub approval: String,
    pub approvers: PolicyApprovers,
    pub self_service: bool,
    /// `refuse`, `require_approval` or `off`.
    pub privileged_guard: String,
    pub approval_ttl_secs: i32,
    /// The groups an employee may add themselves to (`grant_access` self-service).
    pub self_service_groups: Vec<Uuid>,
    /// Whether `set_mailbox_forwarding` to an outside address waits for an approval even
    /// when `approval` is `none`.
    pub outside_forwarding_approval: bool,
}

/// A Graph subscription held for change notifications.
#[derive(Serialize, ToSchema)]
pub struct GraphSubscription {
    pub subscription_id: String,
    /// `users` or `groups`.
    pub resource: String,
    pub expires_at: DateTime<Utc>,
    pub renew_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub renewed_at: Option<DateTime<Utc>>,
}

/// Whether Graph tells Tenantry about changes, and what it holds for that.
#[derive(Serialize, ToSchema)]
pub struct ChangeNotifications {
    pub enabled: bool,
    pub subscriptions: Vec<GraphSubscription>,
    /// Notifications received in the last 24 hours.
    pub notifications_last_day: i64,
}

/// A delivery to `/hooks/{endpoint}`.
#[derive(Serialize, ToSchema)]
pub struct Delivery {
    pub id: Uuid,
    /// The sender's event id.
    pub event_id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub state: String,
    pub outcome: Value,
    pub received_at: DateTime<Utc>,
    /// `true` when this event id was received before (nothing was done).
    pub duplicate: bool,
}

/// Graph notifications recorded.
#[derive(Serialize, ToSchema)]
pub struct GraphReceipt {
    pub recorded: i64,
}

/// An inbox rule as Exchange Online lists it (`Get-InboxRule -IncludeHidden`), judged.
#[derive(Serialize, ToSchema)]
pub struct InboxRule {
    /// `Alias\RuleIdentity`, what `Disable-InboxRule` takes.
    pub identity: String,
    pub name: String,
    pub enabled: bool,
    pub priority: Option<i64>,
    pub forward_to: Vec<String>,
    pub redirect_to: Vec<String>,
    pub move_to_folder: Option<String>,
    pub delete_message: bool,
    pub subject_or_body_contains: Vec<String>,
    /// Exchange's own rule (junk mail, out of office): never disabled.
    pub built_in: bool,
    /// Outlook's `Delegate Rule -N`, which Exchange refuses to disable.
    pub delegate_rule: bool,
    /// Why it looks like an attacker's rule; empty when it does not.
    pub suspicious: Vec<String>,
}

/// A member of a distribution group, as `Get-DistributionGroupMember` listed it.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DistributionGroupMember {
    pub display_name: String,
    pub primary_smtp_address: Option<String>,
    /// The member's Entra object id, when it has one.
    pub user_id: Option<String>,
    pub recipient_type_details: Option<String>,
}
