//! Writing what a run reads: each page straight into the run's generation of the
//! inventory (one statement per page, the JSON parsed by PostgreSQL), memberships, and
//! what waits in `discovery_stage` for the apply.

use super::*;

/// Whether a page of users or groups needs the removal bookkeeping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Removals {
    /// Neither this page nor an earlier one of the section in this attempt holds
    /// `@removed` items.
    None,
    /// This page or an earlier one may hold some.
    Possible,
}

impl Removals {
    /// For a page: `Possible` when it mentions `@removed` (or when `earlier` was).
    pub fn of_page(objects: &str, earlier: Removals) -> Self {
        if earlier == Removals::Possible || objects.contains("\"@removed\"") {
            Removals::Possible
        } else {
            Removals::None
        }
    }
}

impl DiscoveryStore {
    /// Writes one page of a section into the run's generation of the inventory. `objects`
    /// is the page's `value` array as Microsoft sent it: PostgreSQL parses it once, and
    /// nothing is built object by object on the way. Objects are keyed by `id_field`; one
    /// listed twice in the page is written once, as last listed. For users and groups see
    /// [`DiscoveryStore::write_delta_page`]; here their pages are taken as holding no
    /// removals.
    pub async fn write_page(
        &self,
        keys: RunKeys,
        section: &str,
        id_field: &str,
        objects: &str,
    ) -> Result<(), StoreError> {
        self.write(keys, section, id_field, objects, Removals::None)
            .await
    }

    /// Writes one page of users or groups read by delta query. `@removed` items are kept
    /// aside for the apply (dropping what the run wrote of them), and an object listed
    /// again cancels a removal kept earlier in the run: that work is done only when
    /// `removals` says this page or an earlier one of the section may hold removals (a
    /// fresh round lists none; doing it for every page of a full scan cost as much as the
    /// page itself, see docs/jobs.md).
    pub async fn write_delta_page(
        &self,
        keys: RunKeys,
        section: &str,
        objects: &str,
        removals: Removals,
    ) -> Result<(), StoreError> {
        self.write(keys, section, "id", objects, removals).await
    }

    async fn write(
        &self,
        keys: RunKeys,
        section: &str,
        id_field: &str,
        objects: &str,
        removals: Removals,
    ) -> Result<(), StoreError> {
        let removals = removals == Removals::Possible;
        // A page of users or groups without removals is first written with a plain
        // insert: no duplicate elimination, no speculative insertion. The section was
        // cleared when this attempt began reading it, so only an object Microsoft listed
        // twice (in the page, or in an earlier one) can collide; then the page is written
        // again as an upsert, the last listing winning as before.
        // Listed sections (devices, service principals, licences, …) are cleared the same
        // way, so their pages take the plain insert too.
        let plain = match Table::of(section) {
            Table::Users if !removals => Some(INSERT_USERS),
            Table::Groups if !removals => Some(INSERT_GROUPS),
            Table::Objects => Some(INSERT_OBJECTS),
            _ => None,
        };
        if let Some(sql) = plain {
            let query = sqlx::query(sql)
                .bind(keys.organization.as_uuid())
                .bind(keys.run.as_uuid())
                .bind(objects);
            let query = match Table::of(section) {
                Table::Objects => query.bind(section).bind(id_field),
                _ => query.bind(keys.msp.as_uuid()),
            };
            let inserted = query.execute(&self.pool).await;
            match inserted {
                Ok(_) => return Ok(()),
                Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("23505") => {}
                Err(error) => return Err(error.into()),
            }
        }
        let query = match Table::of(section) {
            Table::Users if removals => sqlx::query(WRITE_USERS),
            Table::Users => sqlx::query(WRITE_USERS_ONLY),
            Table::Groups if removals => sqlx::query(WRITE_GROUPS),
            Table::Groups => sqlx::query(WRITE_GROUPS_ONLY),
            Table::Roles => sqlx::query(WRITE_ROLES),
            Table::Objects => sqlx::query(WRITE_OBJECTS),
            Table::GroupMembers | Table::RoleMembers | Table::Stage => {
                return Err(StoreError::Corrupt(format!(
                    "{section} is not written from pages"
                )));
            }
        };
        let query = query
            .bind(keys.organization.as_uuid())
            .bind(keys.run.as_uuid())
            .bind(objects);
        let query = match Table::of(section) {
            Table::Users | Table::Groups => query.bind(keys.msp.as_uuid()),
            Table::Objects => query.bind(section).bind(id_field),
            _ => query,
        };
        query.execute(&self.pool).await?;
        Ok(())
    }

    /// Writes members of groups (`group_members`) or directory roles (`role_members`) into
    /// the run's generation.
    pub async fn write_memberships(
        &self,
        keys: RunKeys,
        section: &str,
        members: &[Membership],
    ) -> Result<(), StoreError> {
        let sql = match Table::of(section) {
            Table::GroupMembers => WRITE_GROUP_MEMBERS,
            Table::RoleMembers => WRITE_ROLE_MEMBERS,
            _ => {
                return Err(StoreError::Corrupt(format!(
                    "{section} holds no memberships"
                )));
            }
        };
        if members.is_empty() {
            return Ok(());
        }
        let parents: Vec<Uuid> = members.iter().map(|m| m.parent).collect();
        let ids: Vec<Uuid> = members.iter().map(|m| m.member).collect();
        let kinds: Vec<&str> = members.iter().map(|m| m.kind.as_str()).collect();
        sqlx::query(sql)
            .bind(keys.organization.as_uuid())
            .bind(keys.run.as_uuid())
            .bind(&parents)
            .bind(&ids)
            .bind(&kinds)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Keeps objects aside until the run is applied.
    pub async fn stage(
        &self,
        run: DiscoveryRunId,
        section: &str,
        objects: &[StagedObject],
    ) -> Result<(), StoreError> {
        if objects.is_empty() {
            return Ok(());
        }
        let ids: Vec<&str> = objects.iter().map(|o| o.object_id.as_str()).collect();
        let data: Vec<&serde_json::Value> = objects.iter().map(|o| &o.data).collect();
        sqlx::query(
            "insert into discovery_stage (run_id, section, object_id, data)
             select $1, $2, * from unnest($3::text[], $4::jsonb[])
             where exists (select 1 from discovery_run where run_id = $1 and state = 'running' for key share)
             on conflict (run_id, section, object_id) do update set data = excluded.data",
        )
        .bind(run.as_uuid())
        .bind(section)
        .bind(&ids)
        .bind(&data)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The groups this run wrote (all of them in a full run, the changed ones in a delta
    /// run): the groups whose members to read.
    pub async fn written_group_ids(&self, keys: RunKeys) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "select group_id::text from inventory_group
             where organization_id = $1 and generation = $2 order by group_id",
        )
        .bind(keys.organization.as_uuid())
        .bind(keys.run.as_uuid())
        .fetch_all(&self.pool)
        .await?)
    }

    /// The delta link a section staged (kept for an apply after a resumed attempt).
    pub async fn staged_delta_link(
        &self,
        run: DiscoveryRunId,
        section: &str,
    ) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "select data #>> '{}' from discovery_stage
             where run_id = $1 and section = 'delta_link' and object_id = $2",
        )
        .bind(run.as_uuid())
        .bind(section)
        .fetch_optional(&self.pool)
        .await?
        .flatten())
    }

    /// The expiry of the credential in use (client secret or certificate), as the
    /// app-secret section wrote it.
    pub async fn written_secret_expiry(
        &self,
        keys: RunKeys,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        let text: Option<Option<String>> = sqlx::query_scalar(
            "select coalesce(data->'secret_in_use'->>'expires_at', data->'certificate_in_use'->>'expires_at') from inventory_object
             where organization_id = $1 and generation = $2 and section = 'app_secret' limit 1",
        )
        .bind(keys.organization.as_uuid())
        .bind(keys.run.as_uuid())
        .fetch_optional(&self.pool)
        .await?;
        Ok(text
            .flatten()
            .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
            .map(|t| t.with_timezone(&Utc)))
    }

    /// Drops what this run wrote of a section (before it is read again from the start).
    pub async fn clear_section(&self, keys: RunKeys, section: &str) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        lock_running(&mut tx, keys.run.as_uuid()).await?;
        // The section's removals, its mark of a fresh delta round (a re-read may not be
        // one), and for members the groups they were read for.
        sqlx::query(
            "delete from discovery_stage where run_id = $1
               and (section = $2 or (section = 'fresh_round' and object_id = $2)
                    or ($2 = 'group_members' and section = 'member_groups'))",
        )
        .bind(keys.run.as_uuid())
        .bind(section)
        .execute(&mut *tx)
        .await?;
        for (table, object_section) in section_rows(section) {
            delete_generation(
                &mut tx,
                table,
                keys.organization.as_uuid(),
                keys.run.as_uuid(),
                object_section,
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

// Page writers. Parameters: $1 organization, $2 generation, $3 the page's objects (a JSON
// array), then $4 the MSP (users, groups) or $4 the section and $5 the id field (listed
// sections).

/// The page's objects, each once (the last listing wins), with their ids.
macro_rules! page_cte {
    () => {
        "page as (
        select distinct on (e.d->>'id') e.d, e.d->>'id' as id
        from jsonb_array_elements($3::text::jsonb) with ordinality as e (d, n)
        where e.d ? 'id' and exists (select 1 from discovery_run
            where run_id = $2 and state = 'running' for key share)
        order by e.d->>'id', e.n desc)"
    };
}

/// A delta page's removals of `section`: kept aside, dropping what the run wrote of the
/// object, and an object present again cancels a removal kept earlier in the run. The
/// deletes look their objects up by primary key (`= any(array(…))`): written as
/// `in (select …)`, PostgreSQL's generic plan walked every row the run had written of
/// the organization against the whole page, for every page.
macro_rules! removals_cte {
    ($section:literal, $table:literal, $id:literal) => {
        concat!(
            "removed as (
        insert into discovery_stage (run_id, section, object_id, data, removed)
        select $2, '", $section, "', id, d, true from page where d ? '@removed'
        on conflict (run_id, section, object_id) do update set data = excluded.data, removed = true),
    unwritten as (
        delete from ", $table, " where organization_id = $1 and generation = $2
          and ", $id, " = any(array(select id::uuid from page where d ? '@removed'))),
    revived as (
        delete from discovery_stage where run_id = $2 and section = '", $section, "'
          and object_id = any(array(select id from page where not d ? '@removed')))"
        )
    };
}

macro_rules! write_users {
    () => {
        "
    insert into inventory_user
        (organization_id, generation, user_id, display_name, user_principal_name, mail, department, job_title, account_enabled, data, msp_id)
    select $1, $2, id::uuid, d->>'displayName', d->>'userPrincipalName', d->>'mail',
           d->>'department', d->>'jobTitle', (d->>'accountEnabled')::boolean, d, $4
    from page where not d ? '@removed'
    on conflict (organization_id, generation, user_id) do update set
        display_name = excluded.display_name, user_principal_name = excluded.user_principal_name,
        mail = excluded.mail, department = excluded.department, job_title = excluded.job_title,
        account_enabled = excluded.account_enabled, data = excluded.data"
    };
}

macro_rules! write_groups {
    () => {
        "
    insert into inventory_group
        (organization_id, generation, group_id, display_name, mail, kind, data, msp_id)
    select $1, $2, id::uuid, d->>'displayName', d->>'mail',
           case when coalesce(d->'groupTypes', '[]'::jsonb) ? 'Unified' then 'm365'
                when coalesce((d->>'securityEnabled')::boolean, false) then 'security'
                else 'distribution' end,
           d, $4
    from page where not d ? '@removed'
    on conflict (organization_id, generation, group_id) do update set
        display_name = excluded.display_name, mail = excluded.mail, kind = excluded.kind, data = excluded.data"
    };
}

/// The objects of a page (`$3`) while the run (`$2`) is running.
macro_rules! page_rows {
    () => {
        "
    from jsonb_array_elements($3::text::jsonb) as e (d)
    where d ? 'id' and not d ? '@removed' and exists (select 1 from discovery_run
        where run_id = $2 and state = 'running' for key share)"
    };
}

/// A page of users with no removals and, it is hoped, no object seen before.
const INSERT_USERS: &str = concat!(
    "insert into inventory_user
        (organization_id, generation, user_id, display_name, user_principal_name, mail, department, job_title, account_enabled, data, msp_id)
    select $1, $2, (d->>'id')::uuid, d->>'displayName', d->>'userPrincipalName', d->>'mail',
           d->>'department', d->>'jobTitle', (d->>'accountEnabled')::boolean, d, $4",
    page_rows!()
);

/// A page of groups with no removals and, it is hoped, no object seen before.
const INSERT_GROUPS: &str = concat!(
    "insert into inventory_group
        (organization_id, generation, group_id, display_name, mail, kind, data, msp_id)
    select $1, $2, (d->>'id')::uuid, d->>'displayName', d->>'mail',
           case when coalesce(d->'groupTypes', '[]'::jsonb) ? 'Unified' then 'm365'
                when coalesce((d->>'securityEnabled')::boolean, false) then 'security'
                else 'distribution' end,
           d, $4",
    page_rows!()
);

/// A page of users that holds no removals, after none earlier in the run.
const WRITE_USERS_ONLY: &str = concat!("with ", page_cte!(), write_users!());

/// A page of groups that holds no removals, after none earlier in the run.
const WRITE_GROUPS_ONLY: &str = concat!("with ", page_cte!(), write_groups!());

const WRITE_USERS: &str = concat!(
    "with ",
    page_cte!(),
    ", ",
    removals_cte!("users", "inventory_user", "user_id"),
    write_users!()
);

const WRITE_GROUPS: &str = concat!(
    "with ",
    page_cte!(),
    ", ",
    removals_cte!("groups", "inventory_group", "group_id"),
    write_groups!()
);

const WRITE_ROLES: &str = concat!(
    "with ",
    page_cte!(),
    "
    insert into inventory_role (organization_id, generation, role_id, role_template_id, display_name)
    select $1, $2, id::uuid, (d->>'roleTemplateId')::uuid, d->>'displayName' from page
    on conflict (organization_id, generation, role_id) do update set
        role_template_id = excluded.role_template_id, display_name = excluded.display_name"
);

/// A page of a listed section with, it is hoped, no object seen before.
const INSERT_OBJECTS: &str = "insert into inventory_object
        (organization_id, generation, section, object_id, display_name, data)
    select $1::uuid, $2::uuid, $4::text, e.d->>$5,
           coalesce(e.d->>'displayName', e.d->>'deviceName', e.d->>'userDisplayName', e.d->>'skuPartNumber', e.d->>$5),
           e.d
    from jsonb_array_elements($3::text::jsonb) as e (d)
    where e.d ? $5 and exists (select 1 from discovery_run
        where run_id = $2 and state = 'running' for key share)";

const WRITE_OBJECTS: &str = "insert into inventory_object
        (organization_id, generation, section, object_id, display_name, data)
    select distinct on (e.d->>$5) $1::uuid, $2::uuid, $4::text, e.d->>$5,
           coalesce(e.d->>'displayName', e.d->>'deviceName', e.d->>'userDisplayName', e.d->>'skuPartNumber', e.d->>$5),
           e.d
    from jsonb_array_elements($3::text::jsonb) with ordinality as e (d, n)
    where e.d ? $5 and exists (select 1 from discovery_run
        where run_id = $2 and state = 'running' for key share)
    order by e.d->>$5, e.n desc
    on conflict (organization_id, generation, section, object_id) do update set
        display_name = excluded.display_name, data = excluded.data";

// Membership writers: $1 organization, $2 generation, $3 parents, $4 members, $5 kinds.

const WRITE_GROUP_MEMBERS: &str = "insert into inventory_group_member
        (organization_id, generation, group_id, member_id, member_type)
    select $1, $2, * from unnest($3::uuid[], $4::uuid[], $5::text[])
    where exists (select 1 from discovery_run where run_id = $2 and state = 'running' for key share)
    on conflict do nothing";

const WRITE_ROLE_MEMBERS: &str = "insert into inventory_role_member
        (organization_id, generation, role_id, member_id, member_type)
    select $1, $2, * from unnest($3::uuid[], $4::uuid[], $5::text[])
    where exists (select 1 from discovery_run where run_id = $2 and state = 'running' for key share)
    on conflict do nothing";

#[cfg(test)]
mod tests {
    use super::Removals;

    #[test]
    fn removal_bookkeeping_starts_with_the_first_page_that_mentions_one() {
        let plain = r#"[{"id":"a","displayName":"A"}]"#;
        let removal = r#"[{"id":"b","@removed":{"reason":"deleted"}}]"#;
        assert_eq!(Removals::of_page(plain, Removals::None), Removals::None);
        assert_eq!(
            Removals::of_page(removal, Removals::None),
            Removals::Possible
        );
        // An object listed again after a removal earlier in the section cancels it.
        assert_eq!(
            Removals::of_page(plain, Removals::Possible),
            Removals::Possible
        );
    }
}
