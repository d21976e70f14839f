//! Applying a finished run in one transaction: a full run's generation becomes the
//! inventory (sections it could not read carried forward), a delta run is merged into
//! the current generation (users and groups object by object, any other section it read
//! replacing the current one's rows), and the previous generation is dropped; every
//! section read is remembered with the time the run started.

use super::*;

impl DiscoveryStore {
    /// Applies the run's sections to the inventory and finishes the run, in one
    /// transaction: a full run's generation becomes the organization's inventory (keeping
    /// the previous generation's rows of sections it did not read), a delta run's rows
    /// and removals are merged into the current generation.
    pub async fn apply(
        &self,
        run: &RunRecord,
        msp: MspId,
        applied: &[Applied],
        secret_expires_at: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError> {
        let full = run.mode == Mode::Full.as_str();
        let mut tx = self.pool.begin().await?;
        // Lock the organization row: an organization deleted meanwhile ends the run here,
        // and no other apply or action changes its generation until this one commits.
        let owner: Option<(Uuid, Uuid)> = sqlx::query_as(
            "select msp_id, inventory_generation from organization where organization_id = $1 for update",
        )
        .bind(run.organization_id.as_uuid())
        .fetch_optional(&mut *tx)
        .await?;
        let Some((owner, current)) = owner else {
            return Err(StoreError::NotFound);
        };
        if owner != msp.as_uuid() {
            return Err(StoreError::Corrupt(format!(
                "run {} names another MSP than its organization",
                run.run_id.as_uuid()
            )));
        }
        // Only a running run applies: a worker whose attempt was rescued, and whose run
        // another attempt has already applied or ended, changes nothing here.
        lock_running(&mut tx, run.run_id.as_uuid()).await?;
        let organization = run.organization_id.as_uuid();
        if full {
            for section in Section::ALL {
                if applied.iter().any(|a| a.section == section.name()) {
                    continue;
                }
                for (table, object_section) in section_rows(section.name()) {
                    delete_generation(
                        &mut tx,
                        table,
                        organization,
                        run.run_id.as_uuid(),
                        object_section,
                    )
                    .await?;
                    carry_forward(
                        &mut tx,
                        table,
                        organization,
                        current,
                        run.run_id.as_uuid(),
                        object_section,
                    )
                    .await?;
                }
            }
            sqlx::query(
                "update organization set inventory_generation = $2 where organization_id = $1",
            )
            .bind(organization)
            .bind(run.run_id.as_uuid())
            .execute(&mut *tx)
            .await?;
            for table in INVENTORY_TABLES {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "delete from {} where organization_id = $1 and generation <> $2",
                    table.name()
                )))
                .bind(organization)
                .bind(run.run_id.as_uuid())
                .execute(&mut *tx)
                .await?;
            }
        } else {
            for section in applied {
                merge_delta(
                    &mut tx,
                    run.run_id.as_uuid(),
                    organization,
                    current,
                    section.section,
                )
                .await?;
            }
            for table in INVENTORY_TABLES {
                delete_generation(&mut tx, table, organization, run.run_id.as_uuid(), None).await?;
            }
        }
        // When each section was read (or refused: asking again before it is due would
        // cost a request per delta run for nothing; full runs ask again): from the run's
        // start, so a request for a section that arrives while the run reads it still
        // counts afterwards.
        let names: Vec<&str> = applied.iter().map(|a| a.section).collect();
        sqlx::query(
            "insert into discovery_section (organization_id, section, read_at)
             select $1, s.section, r.started_at
             from discovery_run r,
                  lateral (select unnest($2::text[]) as section
                           union select key from jsonb_each(r.sections) where value->>'status' = 'skipped') s
             where r.run_id = $3 and r.started_at is not null
             on conflict (organization_id, section) do update set read_at = excluded.read_at",
        )
        .bind(organization)
        .bind(&names)
        .bind(run.run_id.as_uuid())
        .execute(&mut *tx)
        .await?;
        for section in applied {
            if let Some(link) = &section.delta_link {
                sqlx::query(
                    "insert into discovery_cursor (organization_id, section, delta_link) values ($1, $2, $3)
                     on conflict (organization_id, section) do update set delta_link = excluded.delta_link, updated_at = now()",
                )
                .bind(organization)
                .bind(section.section)
                .bind(link)
                .execute(&mut *tx)
                .await?;
            }
        }
        if let Some(expires) = secret_expires_at {
            sqlx::query(
                "update organization set secret_expires_at = $2,
                     status = case when status in ('connected', 'secret_expiring')
                                   then case when $2 < now() + interval '30 days' then 'secret_expiring' else 'connected' end
                                   else status end
                 where organization_id = $1",
            )
            .bind(organization)
            .bind(expires)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query("delete from discovery_stage where run_id = $1")
            .bind(run.run_id.as_uuid())
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "update discovery_run set state = 'succeeded', finished_at = now(), error = null,
                 sections = coalesce((select jsonb_object_agg(key,
                     case when value->>'status' = 'staged' then jsonb_set(value, '{status}', '\"done\"') else value end)
                     from jsonb_each(sections)), '{}')
             where run_id = $1",
        )
        .bind(run.run_id.as_uuid())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }
}

/// Locks a run that is still running (its writes and its apply hold this lock), or
/// refuses: the run was applied, failed or closed by another attempt, or is gone.
pub(super) async fn lock_running(tx: &mut PgConnection, run: Uuid) -> Result<(), StoreError> {
    let running: Option<Uuid> = sqlx::query_scalar(
        "select run_id from discovery_run where run_id = $1 and state = 'running' for update",
    )
    .bind(run)
    .fetch_optional(&mut *tx)
    .await?;
    match running {
        Some(_) => Ok(()),
        None => Err(StoreError::JobConflict("the run is no longer running")),
    }
}

/// Deletes a generation's rows from one inventory table (of one section, for
/// `inventory_object`).
pub(super) async fn delete_generation(
    tx: &mut PgConnection,
    table: Table,
    organization: Uuid,
    generation: Uuid,
    object_section: Option<&str>,
) -> Result<(), StoreError> {
    let sql = format!(
        "delete from {} where organization_id = $1 and generation = $2",
        table.name()
    );
    match object_section {
        Some(section) => {
            sqlx::query(sqlx::AssertSqlSafe(format!("{sql} and section = $3")))
                .bind(organization)
                .bind(generation)
                .bind(section)
                .execute(&mut *tx)
                .await?
        }
        None => {
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(organization)
                .bind(generation)
                .execute(&mut *tx)
                .await?
        }
    };
    Ok(())
}

/// Drops everything a run wrote: its generation and its staged rows.
pub(super) async fn drop_run_rows(
    tx: &mut PgConnection,
    organization: Uuid,
    run: Uuid,
) -> Result<(), StoreError> {
    for table in INVENTORY_TABLES {
        delete_generation(tx, table, organization, run, None).await?;
    }
    sqlx::query("delete from discovery_stage where run_id = $1")
        .bind(run)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// Moves the previous generation's rows of a section the run did not read into the run's
/// generation.
async fn carry_forward(
    tx: &mut PgConnection,
    table: Table,
    organization: Uuid,
    from: Uuid,
    to: Uuid,
    object_section: Option<&str>,
) -> Result<(), StoreError> {
    let sql = format!(
        "update {} set generation = $3 where organization_id = $1 and generation = $2",
        table.name()
    );
    let query = match object_section {
        Some(_) => sqlx::query(sqlx::AssertSqlSafe(format!("{sql} and section = $4"))),
        None => sqlx::query(sqlx::AssertSqlSafe(sql)),
    };
    let query = query.bind(organization).bind(from).bind(to);
    match object_section {
        Some(section) => query.bind(section).execute(&mut *tx).await?,
        None => query.execute(&mut *tx).await?,
    };
    Ok(())
}

/// Merges one section of a delta run into the current generation: removals first, then
/// the run's rows over the current ones.
async fn merge_delta(
    tx: &mut PgConnection,
    run: Uuid,
    organization: Uuid,
    current: Uuid,
    section: &str,
) -> Result<(), StoreError> {
    let statements: &[&'static str] = match section {
        "users" => &[
            // Gone: users the run saw removed, and after a fresh round (no delta link, or an
            // expired one) users it did not list; their memberships go with them.
            "with gone as (
                 select s.object_id::uuid as id from discovery_stage s
                 where s.run_id = $2 and s.section = 'users' and s.removed
                 union
                 select u.user_id from inventory_user u
                 where u.organization_id = $1 and u.generation = $3
                   and exists (select 1 from discovery_stage f where f.run_id = $2
                               and f.section = 'fresh_round' and f.object_id = 'users')
                   and not exists (select 1 from inventory_user r where r.organization_id = $1
                                   and r.generation = $2 and r.user_id = u.user_id)),
             users as (
                 delete from inventory_user where organization_id = $1 and generation = $3
                   and user_id in (select id from gone)),
             group_memberships as (
                 delete from inventory_group_member where organization_id = $1 and generation = $3
                   and member_id in (select id from gone))
             delete from inventory_role_member where organization_id = $1 and generation = $3
               and member_id in (select id from gone)",
            "insert into inventory_user (msp_id, organization_id, generation, user_id, display_name,
                 user_principal_name, mail, department, job_title, account_enabled, data)
             select msp_id, organization_id, $3, user_id, display_name, user_principal_name, mail,
                    department, job_title, account_enabled, data
             from inventory_user where organization_id = $1 and generation = $2
             on conflict (organization_id, generation, user_id) do update set
                 display_name = excluded.display_name, user_principal_name = excluded.user_principal_name,
                 mail = excluded.mail, department = excluded.department, job_title = excluded.job_title,
                 account_enabled = excluded.account_enabled, data = excluded.data",
        ],
        "groups" => &[
            // Gone: as for users; their memberships, either way, go with them.
            "with gone as (
                 select s.object_id::uuid as id from discovery_stage s
                 where s.run_id = $2 and s.section = 'groups' and s.removed
                 union
                 select g.group_id from inventory_group g
                 where g.organization_id = $1 and g.generation = $3
                   and exists (select 1 from discovery_stage f where f.run_id = $2
                               and f.section = 'fresh_round' and f.object_id = 'groups')
                   and not exists (select 1 from inventory_group r where r.organization_id = $1
                                   and r.generation = $2 and r.group_id = g.group_id)),
             groups as (
                 delete from inventory_group where organization_id = $1 and generation = $3
                   and group_id in (select id from gone))
             delete from inventory_group_member where organization_id = $1 and generation = $3
               and (group_id in (select id from gone) or member_id in (select id from gone))",
            "insert into inventory_group (msp_id, organization_id, generation, group_id, display_name, mail, kind, data)
             select msp_id, organization_id, $3, group_id, display_name, mail, kind, data
             from inventory_group where organization_id = $1 and generation = $2
             on conflict (organization_id, generation, group_id) do update set
                 display_name = excluded.display_name, mail = excluded.mail, kind = excluded.kind, data = excluded.data",
        ],
        "group_members" => &[
            "delete from inventory_group_member m using discovery_stage s
             where s.run_id = $2 and s.section = 'member_groups' and m.organization_id = $1
               and m.generation = $3 and m.group_id = s.object_id::uuid",
            "insert into inventory_group_member (organization_id, generation, group_id, member_id, member_type)
             select organization_id, $3, group_id, member_id, member_type
             from inventory_group_member where organization_id = $1 and generation = $2
             on conflict do nothing",
        ],
        // Any other section a delta run read (it was due): its rows replace the current
        // generation's.
        other => {
            for (table, object_section) in section_rows(other) {
                delete_generation(tx, table, organization, current, object_section).await?;
                carry_forward(tx, table, organization, run, current, object_section).await?;
            }
            &[]
        }
    };
    for statement in statements {
        sqlx::query(*statement)
            .bind(organization)
            .bind(run)
            .bind(current)
            .execute(&mut *tx)
            .await?;
    }
    Ok(())
}
