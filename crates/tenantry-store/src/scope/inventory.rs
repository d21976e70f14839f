//! The MSP-scoped doors to an organization's discovered inventory: users, groups,
//! roles, listed sections, and lookups of a user or group by id, name or mail.

use tenantry_domain::OrganizationId;
use uuid::Uuid;

use super::MspScope;
use crate::api_keys::Page;
use crate::error::StoreError;
use crate::inventory::{self, CURRENT, GroupFilter, UserFilter};

/// A user or group found in the inventory.
#[derive(Clone, Debug)]
pub struct Found {
    pub id: Uuid,
    pub name: Option<String>,
    pub user_principal_name: Option<String>,
}

impl MspScope<'_> {
    pub async fn inventory_users(
        &self,
        id: OrganizationId,
        filter: &UserFilter,
        page: Page,
    ) -> Result<Vec<inventory::InventoryUser>, StoreError> {
        self.ensure_organization(id).await?;
        inventory::users(self.pool, id.as_uuid(), filter, page).await
    }

    pub async fn inventory_user(
        &self,
        id: OrganizationId,
        user: Uuid,
    ) -> Result<inventory::UserDetail, StoreError> {
        self.ensure_organization(id).await?;
        inventory::user(self.pool, id.as_uuid(), user).await
    }

    pub async fn inventory_groups(
        &self,
        id: OrganizationId,
        filter: &GroupFilter,
        page: Page,
    ) -> Result<Vec<inventory::InventoryGroup>, StoreError> {
        self.ensure_organization(id).await?;
        inventory::groups(self.pool, id.as_uuid(), filter, page).await
    }

    pub async fn inventory_group_members(
        &self,
        id: OrganizationId,
        group: Uuid,
        page: Page,
    ) -> Result<Vec<inventory::Member>, StoreError> {
        self.ensure_organization(id).await?;
        inventory::group_members(self.pool, id.as_uuid(), group, page).await
    }

    pub async fn inventory_roles(
        &self,
        id: OrganizationId,
    ) -> Result<Vec<inventory::RoleWithMembers>, StoreError> {
        self.ensure_organization(id).await?;
        inventory::roles(self.pool, id.as_uuid()).await
    }

    pub async fn approver_proposals(
        &self,
        id: OrganizationId,
    ) -> Result<Vec<inventory::ApproverProposal>, StoreError> {
        self.ensure_organization(id).await?;
        inventory::approver_proposals(self.pool, id.as_uuid()).await
    }

    /// Rows of a listed inventory section (`licenses`, `service_principals`, `devices`).
    pub async fn inventory_objects(
        &self,
        id: OrganizationId,
        section: &str,
        page: Page,
    ) -> Result<Vec<inventory::InventoryObject>, StoreError> {
        self.ensure_organization(id).await?;
        let after = page.after.map(|a| a.to_string());
        inventory::objects(
            self.pool,
            id.as_uuid(),
            section,
            after.as_deref(),
            page.limit,
        )
        .await
    }

    /// A page of the organization's mailboxes, narrowed by `filter`.
    pub async fn inventory_mailboxes(
        &self,
        id: OrganizationId,
        filter: &inventory::MailboxFilter,
        page: Page,
    ) -> Result<Vec<inventory::InventoryObject>, StoreError> {
        self.ensure_organization(id).await?;
        let after = page.after.map(|a| a.to_string());
        inventory::mailboxes(
            self.pool,
            id.as_uuid(),
            filter,
            after.as_deref(),
            page.limit,
        )
        .await
    }

    /// A page of the organization's distribution groups, searched by `q`.
    pub async fn inventory_distribution_groups(
        &self,
        id: OrganizationId,
        q: Option<&str>,
        page: Page,
    ) -> Result<Vec<inventory::InventoryObject>, StoreError> {
        self.ensure_organization(id).await?;
        let after = page.after.map(|a| a.to_string());
        inventory::search_objects(
            self.pool,
            id.as_uuid(),
            "distribution_groups",
            q,
            after.as_deref(),
            page.limit,
        )
        .await
    }

    /// One distribution group by its Exchange guid.
    pub async fn inventory_distribution_group(
        &self,
        id: OrganizationId,
        group: &str,
    ) -> Result<inventory::InventoryObject, StoreError> {
        self.ensure_organization(id).await?;
        inventory::object(self.pool, id.as_uuid(), "distribution_groups", group)
            .await?
            .ok_or(StoreError::NotFound)
    }

    /// One mailbox by its Exchange guid or primary address.
    pub async fn inventory_mailbox(
        &self,
        id: OrganizationId,
        key: &str,
    ) -> Result<inventory::InventoryObject, StoreError> {
        self.ensure_organization(id).await?;
        inventory::mailbox(self.pool, id.as_uuid(), key)
            .await?
            .ok_or(StoreError::NotFound)
    }

    /// A user of the inventory by object id, user principal name or mail.
    pub async fn inventory_user_by_key(
        &self,
        organization: OrganizationId,
        key: &str,
    ) -> Result<Option<Found>, StoreError> {
        self.ensure_organization(organization).await?;
        let id = key.parse::<Uuid>().ok();
        let sql = format!(
            "select user_id, display_name, user_principal_name from inventory_user
             where organization_id = $1 and generation = {CURRENT}
               and (user_id = $2 or lower(user_principal_name) = lower($3) or lower(mail) = lower($3))
             order by (user_id = $2) desc nulls last, (lower(user_principal_name) = lower($3)) desc
             limit 1"
        );
        let row: Option<(Uuid, Option<String>, Option<String>)> =
            sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(organization.as_uuid())
                .bind(id)
                .bind(key)
                .fetch_optional(self.pool)
                .await?;
        Ok(row.map(|(id, name, upn)| Found {
            id,
            name,
            user_principal_name: upn,
        }))
    }

    /// Groups of the inventory by object id, mail or display name (case-insensitive);
    /// several when a name is ambiguous.
    pub async fn inventory_groups_by_key(
        &self,
        organization: OrganizationId,
        key: &str,
    ) -> Result<Vec<Found>, StoreError> {
        self.ensure_organization(organization).await?;
        let id = key.parse::<Uuid>().ok();
        let sql = format!(
            "select group_id, display_name from inventory_group
             where organization_id = $1 and generation = {CURRENT}
               and (group_id = $2 or lower(mail) = lower($3) or lower(display_name) = lower($3))
             order by group_id limit 5"
        );
        let rows: Vec<(Uuid, Option<String>)> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(organization.as_uuid())
            .bind(id)
            .bind(key)
            .fetch_all(self.pool)
            .await?;
        Ok(rows
            .into_iter()
            .map(|(id, name)| Found {
                id,
                name,
                user_principal_name: None,
            })
            .collect())
    }
}

/// The groups an offboarded user leaves, as the inventory knows them.
#[derive(Clone, Debug, Default)]
pub struct Memberships {
    /// Security and Microsoft 365 groups Graph can change: not dynamic, not synced from
    /// on-premises, not mail-enabled security groups (those are Exchange's).
    pub graph_groups: Vec<(Uuid, Option<String>)>,
    /// Distribution groups and mail-enabled security groups (Exchange guid, name).
    pub distribution_groups: Vec<(String, Option<String>)>,
}

impl MspScope<'_> {
    /// The groups `user` (object id, and `address` for distribution-group members) is a
    /// member of in the last complete scan.
    pub async fn inventory_memberships(
        &self,
        organization: OrganizationId,
        user: Uuid,
        address: &str,
    ) -> Result<Memberships, StoreError> {
        self.ensure_organization(organization).await?;
        let sql = format!(
            "select g.group_id, g.display_name from inventory_group g
             join inventory_group_member gm
               on gm.organization_id = g.organization_id and gm.generation = g.generation and gm.group_id = g.group_id
             where g.organization_id = $1 and g.generation = {CURRENT} and gm.member_id = $2
               and g.kind in ('m365', 'security')
               and not (g.kind = 'security' and coalesce((g.data->>'mailEnabled')::boolean, false))
               and not coalesce(g.data->'groupTypes', '[]'::jsonb) ? 'DynamicMembership'
               and not coalesce((g.data->>'onPremisesSyncEnabled')::boolean, false)
             order by g.display_name, g.group_id limit 1000"
        );
        let graph_groups = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(organization.as_uuid())
            .bind(user)
            .fetch_all(self.pool)
            .await?;
        let sql = format!(
            "select object_id, display_name from inventory_object o
             where organization_id = $1 and generation = {CURRENT} and section = 'distribution_groups'
               and exists (select 1 from jsonb_array_elements(coalesce(o.data->'members', '[]'::jsonb)) m
                           where m->>'userId' = $2 or lower(m->>'primarySmtpAddress') = lower($3))
             order by display_name, object_id limit 1000"
        );
        let distribution_groups = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(organization.as_uuid())
            .bind(user.to_string())
            .bind(address)
            .fetch_all(self.pool)
            .await?;
        Ok(Memberships {
            graph_groups,
            distribution_groups,
        })
    }
}
