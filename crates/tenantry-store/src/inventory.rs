//! Reading an organization's inventory (what the last discovery runs applied). Every
//! query binds the organization as `$1`, and the scope checks the organization belongs to
//! the caller before calling in here. Rows are kept by generation (the run that wrote
//! them); every query reads the organization's current one, named by [`CURRENT`] so the
//! primary keys `(organization_id, generation, id)` serve equality and order alike.

use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;

use crate::error::StoreError;

#[derive(Clone, Debug, Default)]
pub struct UserFilter {
    /// Matches display name, UPN or mail, case-insensitively, anywhere in the text.
    pub q: Option<String>,
    pub department: Option<String>,
    pub job_title: Option<String>,
    pub enabled: Option<bool>,
    /// Only users holding this SKU.
    pub license: Option<Uuid>,
    /// Only users holding no licence at all.
    pub unlicensed: bool,
}

#[derive(Clone, Debug, Serialize, sqlx::FromRow)]
pub struct InventoryUser {
    pub id: Uuid,
    pub display_name: Option<String>,
    pub user_principal_name: Option<String>,
    pub mail: Option<String>,
    pub department: Option<String>,
    pub job_title: Option<String>,
    pub account_enabled: Option<bool>,
    pub office_location: Option<String>,
    pub business_phones: Option<serde_json::Value>,
    pub mobile_phone: Option<String>,
    pub usage_location: Option<String>,
    pub on_premises_sync_enabled: Option<bool>,
    /// The SKU ids of the licences assigned to the user.
    pub assigned_licenses: serde_json::Value,
}

/// The generation readers see, for the organization bound as `$1`.
pub(crate) const CURRENT: &str =
    "(select inventory_generation from organization where organization_id = $1)";

const USER_COLUMNS: &str = "user_id as id, display_name, user_principal_name, mail, department, job_title, account_enabled,
    data->>'officeLocation' as office_location, data->'businessPhones' as business_phones,
    data->>'mobilePhone' as mobile_phone, data->>'usageLocation' as usage_location,
    (data->>'onPremisesSyncEnabled')::boolean as on_premises_sync_enabled,
    (select coalesce(jsonb_agg(l->'skuId'), '[]'::jsonb)
     from jsonb_array_elements(coalesce(data->'assignedLicenses', '[]'::jsonb)) l) as assigned_licenses";

/// `%text%` for LIKE, with LIKE's wildcards in the text taken literally.
fn contains_pattern(text: &str) -> String {
    let escaped = text
        .to_lowercase()
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%{escaped}%")
}

pub(crate) async fn users(
    db: &PgPool,
    organization: Uuid,
    filter: &UserFilter,
    page: crate::Page,
) -> Result<Vec<InventoryUser>, StoreError> {
    let sql = format!(
        "select {USER_COLUMNS} from inventory_user
         where organization_id = $1 and generation = {CURRENT} and ($2::text is null or search like $2)
           and ($3::text is null or lower(department) = lower($3))
           and ($4::text is null or lower(job_title) = lower($4))
           and ($5::boolean is null or account_enabled = $5)
           and ($6::uuid is null or user_id > $6)
           and ($8::text is null or coalesce(data->'assignedLicenses', '[]'::jsonb) @> jsonb_build_array(jsonb_build_object('skuId', $8::text)))
           and (not $9 or coalesce(jsonb_array_length(data->'assignedLicenses'), 0) = 0)
         order by user_id limit $7"
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(organization)
        .bind(filter.q.as_deref().map(contains_pattern))
        .bind(&filter.department)
        .bind(&filter.job_title)
        .bind(filter.enabled)
        .bind(page.after)
        .bind(i64::from(page.limit))
        .bind(filter.license.map(|sku| sku.to_string()))
        .bind(filter.unlicensed)
        .fetch_all(db)
        .await?)
}

#[derive(Clone, Debug, Serialize, sqlx::FromRow)]
pub struct InventoryGroup {
    pub id: Uuid,
    pub display_name: Option<String>,
    pub mail: Option<String>,
    pub kind: String,
    pub description: Option<String>,
    pub member_count: i64,
}

#[derive(Clone, Debug, Serialize, sqlx::FromRow)]
pub struct InventoryRole {
    pub id: Uuid,
    pub role_template_id: Option<Uuid>,
    pub display_name: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct UserDetail {
    #[serde(flatten)]
    pub user: InventoryUser,
    pub groups: Vec<InventoryGroup>,
    pub roles: Vec<InventoryRole>,
}

const GROUP_COLUMNS: &str = "g.group_id as id, g.display_name, g.mail, g.kind, g.data->>'description' as description,
    (select count(*) from inventory_group_member m
     where m.organization_id = g.organization_id and m.generation = g.generation and m.group_id = g.group_id) as member_count";

pub(crate) async fn user(
    db: &PgPool,
    organization: Uuid,
    user: Uuid,
) -> Result<UserDetail, StoreError> {
    let sql = format!(
        "select {USER_COLUMNS} from inventory_user
         where organization_id = $1 and generation = {CURRENT} and user_id = $2"
    );
    let found: InventoryUser = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(organization)
        .bind(user)
        .fetch_optional(db)
        .await?
        .ok_or(StoreError::NotFound)?;
    let sql = format!(
        "select {GROUP_COLUMNS} from inventory_group g
         join inventory_group_member gm
           on gm.organization_id = g.organization_id and gm.generation = g.generation and gm.group_id = g.group_id
         where g.organization_id = $1 and g.generation = {CURRENT} and gm.member_id = $2
         order by g.display_name, g.group_id limit 1000"
    );
    let groups = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(organization)
        .bind(user)
        .fetch_all(db)
        .await?;
    let sql = format!(
        "select r.role_id as id, r.role_template_id, r.display_name from inventory_role r
         join inventory_role_member rm
           on rm.organization_id = r.organization_id and rm.generation = r.generation and rm.role_id = r.role_id
         where r.organization_id = $1 and r.generation = {CURRENT} and rm.member_id = $2
         order by r.display_name"
    );
    let roles = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(organization)
        .bind(user)
        .fetch_all(db)
        .await?;
    Ok(UserDetail {
        user: found,
        groups,
        roles,
    })
}

#[derive(Clone, Debug, Default)]
pub struct GroupFilter {
    pub q: Option<String>,
    pub kind: Option<String>,
}

pub(crate) async fn groups(
    db: &PgPool,
    organization: Uuid,
    filter: &GroupFilter,
    page: crate::Page,
) -> Result<Vec<InventoryGroup>, StoreError> {
    let sql = format!(
        "select {GROUP_COLUMNS} from inventory_group g
         where g.organization_id = $1 and g.generation = {CURRENT} and ($2::text is null or g.search like $2)
           and ($3::text is null or g.kind = $3) and ($4::uuid is null or g.group_id > $4)
         order by g.group_id limit $5"
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(organization)
        .bind(filter.q.as_deref().map(contains_pattern))
        .bind(&filter.kind)
        .bind(page.after)
        .bind(i64::from(page.limit))
        .fetch_all(db)
        .await?)
}

#[derive(Clone, Debug, Serialize, sqlx::FromRow)]
pub struct Member {
    pub id: Uuid,
    #[serde(rename = "type")]
    pub member_type: String,
    pub display_name: Option<String>,
    pub user_principal_name: Option<String>,
}

pub(crate) async fn group_members(
    db: &PgPool,
    organization: Uuid,
    group: Uuid,
    page: crate::Page,
) -> Result<Vec<Member>, StoreError> {
    let sql = format!(
        "select exists(select 1 from inventory_group
         where organization_id = $1 and generation = {CURRENT} and group_id = $2)"
    );
    let exists: bool = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .bind(organization)
        .bind(group)
        .fetch_one(db)
        .await?;
    if !exists {
        return Err(StoreError::NotFound);
    }
    let sql = format!(
        "select m.member_id as id, m.member_type, u.display_name, u.user_principal_name
         from inventory_group_member m
         left join inventory_user u
           on u.organization_id = m.organization_id and u.generation = m.generation and u.user_id = m.member_id
         where m.organization_id = $1 and m.generation = {CURRENT} and m.group_id = $2
           and ($3::uuid is null or m.member_id > $3)
         order by m.member_id limit $4"
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(organization)
        .bind(group)
        .bind(page.after)
        .bind(i64::from(page.limit))
        .fetch_all(db)
        .await?)
}

#[derive(Clone, Debug, Serialize)]
pub struct RoleWithMembers {
    #[serde(flatten)]
    pub role: InventoryRole,
    pub members: Vec<Member>,
}

#[derive(sqlx::FromRow)]
struct RoleMemberRow {
    role_id: Uuid,
    #[sqlx(flatten)]
    member: Member,
}

/// Activated directory roles with their members (a tenant has a few dozen at most; the
/// members of one role are capped at 1,000).
pub(crate) async fn roles(
    db: &PgPool,
    organization: Uuid,
) -> Result<Vec<RoleWithMembers>, StoreError> {
    let sql = format!(
        "select role_id as id, role_template_id, display_name from inventory_role
         where organization_id = $1 and generation = {CURRENT} order by display_name, role_id limit 500"
    );
    let roles: Vec<InventoryRole> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(organization)
        .fetch_all(db)
        .await?;
    let sql = format!(
        "select role_id, id, member_type, display_name, user_principal_name from (
             select rm.role_id, rm.member_id as id, rm.member_type, u.display_name, u.user_principal_name,
                    row_number() over (partition by rm.role_id order by rm.member_id) as n
             from inventory_role_member rm
             left join inventory_user u
               on u.organization_id = rm.organization_id and u.generation = rm.generation and u.user_id = rm.member_id
             where rm.organization_id = $1 and rm.generation = {CURRENT}) ranked
         where n <= 1000 order by role_id, id"
    );
    let members: Vec<RoleMemberRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(organization)
        .fetch_all(db)
        .await?;
    Ok(roles
        .into_iter()
        .map(|role| RoleWithMembers {
            members: members
                .iter()
                .filter(|m| m.role_id == role.id)
                .map(|m| m.member.clone())
                .collect(),
            role,
        })
        .collect())
}

/// Role templates whose holders are proposed as approvers (DESIGN §8).
pub const APPROVER_ROLE_TEMPLATES: [(&str, &str); 4] = [
    (
        "62e90394-69f5-4237-9190-012177145e10",
        "Global Administrator",
    ),
    (
        "e8611ab8-c189-46e8-94e1-60213ab1f814",
        "Privileged Role Administrator",
    ),
    ("fe930be7-5e62-47db-91af-98c3a49a38b1", "User Administrator"),
    (
        "729827e3-9c14-49f7-bb1b-9608f156bbb8",
        "Helpdesk Administrator",
    ),
];

#[derive(Clone, Debug, Serialize, sqlx::FromRow)]
pub struct ApproverProposal {
    pub user_id: Uuid,
    pub display_name: Option<String>,
    pub user_principal_name: Option<String>,
    pub account_enabled: Option<bool>,
    pub roles: Vec<String>,
}

/// Enabled and disabled holders of the approver roles, users only (not service
/// principals or groups).
pub(crate) async fn approver_proposals(
    db: &PgPool,
    organization: Uuid,
) -> Result<Vec<ApproverProposal>, StoreError> {
    let templates: Vec<Uuid> = APPROVER_ROLE_TEMPLATES
        .iter()
        .filter_map(|(id, _)| Uuid::parse_str(id).ok())
        .collect();
    let sql = format!(
        "select u.user_id, u.display_name, u.user_principal_name, u.account_enabled,
                array_agg(distinct coalesce(r.display_name, r.role_template_id::text) order by coalesce(r.display_name, r.role_template_id::text)) as roles
         from inventory_role r
         join inventory_role_member rm
           on rm.organization_id = r.organization_id and rm.generation = r.generation and rm.role_id = r.role_id
         join inventory_user u
           on u.organization_id = rm.organization_id and u.generation = rm.generation and u.user_id = rm.member_id
         where r.organization_id = $1 and r.generation = {CURRENT} and r.role_template_id = any($2)
         group by u.user_id, u.display_name, u.user_principal_name, u.account_enabled
         order by u.display_name, u.user_id limit 1000"
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(organization)
        .bind(&templates)
        .fetch_all(db)
        .await?)
}

#[derive(Clone, Debug, Serialize, sqlx::FromRow)]
pub struct InventoryObject {
    pub id: String,
    pub display_name: Option<String>,
    pub data: serde_json::Value,
}

/// Rows of a listed section (`licenses`, `service_principals`, `devices`, ...), by id.
pub(crate) async fn objects(
    db: &PgPool,
    organization: Uuid,
    section: &str,
    after: Option<&str>,
    limit: u32,
) -> Result<Vec<InventoryObject>, StoreError> {
    let sql = format!(
        "select object_id as id, display_name, data from inventory_object
         where organization_id = $1 and generation = {CURRENT} and section = $2
           and ($3::text is null or object_id > $3)
         order by object_id limit $4"
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(organization)
        .bind(section)
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(db)
        .await?)
}

/// What a mailbox list is narrowed to.
#[derive(Clone, Debug, Default)]
pub struct MailboxFilter {
    /// `RecipientTypeDetails`, e.g. `SharedMailbox`.
    pub recipient_type: Option<String>,
    /// Part of the display name or of an address, case-insensitive.
    pub q: Option<String>,
    /// Only mailboxes forwarding outside the tenant.
    pub forwarding_outside: bool,
}

/// A page of the organization's mailboxes (the `mailboxes` section), by Exchange guid.
pub(crate) async fn mailboxes(
    db: &PgPool,
    organization: Uuid,
    filter: &MailboxFilter,
    after: Option<&str>,
    limit: u32,
) -> Result<Vec<InventoryObject>, StoreError> {
    let sql = format!(
        "select object_id as id, display_name, data from inventory_object
         where organization_id = $1 and generation = {CURRENT} and section = 'mailboxes'
           and ($2::text is null or data->>'recipientTypeDetails' = $2)
           and ($3::text is null or display_name ilike $3 or data->>'primarySmtpAddress' ilike $3)
           and (not $4 or data->>'outsideForwardingDomain' is not null)
           and ($5::text is null or object_id > $5)
         order by object_id limit $6"
    );
    let pattern = filter.q.as_deref().map(contains_pattern);
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(organization)
        .bind(filter.recipient_type.as_deref())
        .bind(pattern)
        .bind(filter.forwarding_outside)
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(db)
        .await?)
}

/// One mailbox of the organization by its Exchange guid or primary address.
pub(crate) async fn mailbox(
    db: &PgPool,
    organization: Uuid,
    key: &str,
) -> Result<Option<InventoryObject>, StoreError> {
    let sql = format!(
        "select object_id as id, display_name, data from inventory_object
         where organization_id = $1 and generation = {CURRENT} and section = 'mailboxes'
           and (object_id = $2 or lower(data->>'primarySmtpAddress') = lower($2))
         limit 1"
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(organization)
        .bind(key)
        .fetch_optional(db)
        .await?)
}

/// A page of a listed section's objects whose display name or primary address holds `q`
/// (distribution groups).
pub(crate) async fn search_objects(
    db: &PgPool,
    organization: Uuid,
    section: &str,
    q: Option<&str>,
    after: Option<&str>,
    limit: u32,
) -> Result<Vec<InventoryObject>, StoreError> {
    let sql = format!(
        "select object_id as id, display_name, data from inventory_object
         where organization_id = $1 and generation = {CURRENT} and section = $2
           and ($3::text is null or display_name ilike $3 or data->>'primarySmtpAddress' ilike $3)
           and ($4::text is null or object_id > $4)
         order by object_id limit $5"
    );
    let pattern = q.map(contains_pattern);
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(organization)
        .bind(section)
        .bind(pattern)
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(db)
        .await?)
}

/// One object of a listed section by its id.
pub(crate) async fn object(
    db: &PgPool,
    organization: Uuid,
    section: &str,
    id: &str,
) -> Result<Option<InventoryObject>, StoreError> {
    let sql = format!(
        "select object_id as id, display_name, data from inventory_object
         where organization_id = $1 and generation = {CURRENT} and section = $2 and object_id = $3"
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(organization)
        .bind(section)
        .bind(id)
        .fetch_optional(db)
        .await?)
}
