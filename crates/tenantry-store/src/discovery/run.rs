//! A run's lifecycle: started (with its organization's credentials opened), each section
//! recorded, failed or noted, orphaned runs closed and scheduled scans queued by the
//! leader.

use super::*;

impl DiscoveryStore {
    /// Marks the run running and opens the organization's credentials.
    pub async fn start(&self, run: DiscoveryRunId) -> Result<RunContext, StoreError> {
        let sql = format!(
            "update discovery_run set state = 'running', started_at = coalesce(started_at, now())
             where run_id = $1 and state in ('queued', 'running') returning {RUN_COLUMNS}"
        );
        let record: RunRecord = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(run.as_uuid())
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound)?;
        let stored = crate::organizations::stored_credential(
            &self.pool,
            self.keyring.as_deref(),
            record.organization_id,
        )
        .await?;
        Ok(RunContext {
            run: record,
            msp_id: stored.msp_id,
            tenant_id: stored.tenant_id,
            client_id: stored.client_id,
            credential: stored.credential,
            partner_connection_id: stored.partner_connection_id,
        })
    }

    /// The stored delta link of a section, if a full run has left one.
    pub async fn delta_link(
        &self,
        organization: OrganizationId,
        section: &str,
    ) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "select delta_link from discovery_cursor where organization_id = $1 and section = $2",
        )
        .bind(organization.as_uuid())
        .bind(section)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Records a section's status (`{"status": ..., "count": ...}`) and request counters.
    pub async fn record_section(
        &self,
        run: DiscoveryRunId,
        section: &str,
        status: &serde_json::Value,
        counters: Counters,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "update discovery_run set sections = jsonb_set(sections, array[$2], $3),
                 graph_requests = graph_requests + $4, graph_round_trips = graph_round_trips + $5,
                 throttled = throttled + $6
             where run_id = $1",
        )
        .bind(run.as_uuid())
        .bind(section)
        .bind(status)
        .bind(counters.requests)
        .bind(counters.round_trips)
        .bind(counters.throttled)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// What the organization's inventory remembers of each section it has read or been
    /// asked to read (sections never mentioned are absent).
    pub async fn section_states(
        &self,
        organization: OrganizationId,
    ) -> Result<Vec<(String, SectionState)>, StoreError> {
        type Row = (String, Option<DateTime<Utc>>, Option<DateTime<Utc>>);
        let rows: Vec<Row> = sqlx::query_as(
            "select section, read_at, requested_at from discovery_section where organization_id = $1",
        )
        .bind(organization.as_uuid())
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(section, read_at, requested_at)| {
                (
                    section,
                    SectionState {
                        read_at,
                        requested_at,
                    },
                )
            })
            .collect())
    }

    /// Asks the next delta run to read `sections` although they are not due (a change
    /// notification named what they hold).
    pub async fn request_sections(
        &self,
        organization: OrganizationId,
        sections: &[Section],
    ) -> Result<(), StoreError> {
        let names: Vec<&str> = sections.iter().map(|s| s.name()).collect();
        sqlx::query(
            "insert into discovery_section (organization_id, section, requested_at)
             select $1, unnest($2::text[]), now()
             where exists (select 1 from organization where organization_id = $1)
             on conflict (organization_id, section) do update set requested_at = now()",
        )
        .bind(organization.as_uuid())
        .bind(&names)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Ends a run that will not be retried, dropping what it wrote (also when the run row
    /// went with its organization).
    pub async fn fail(&self, keys: RunKeys, error: &str) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        let ended = sqlx::query(
            "update discovery_run set state = 'failed', finished_at = now(), error = $2
             where run_id = $1 and state in ('queued', 'running')",
        )
        .bind(keys.run.as_uuid())
        .bind(error)
        .execute(&mut *tx)
        .await?;
        let organization_gone: bool = sqlx::query_scalar(
            "select not exists (select 1 from organization where organization_id = $1)",
        )
        .bind(keys.organization.as_uuid())
        .fetch_one(&mut *tx)
        .await?;
        if ended.rows_affected() > 0 || organization_gone {
            drop_run_rows(&mut tx, keys.organization.as_uuid(), keys.run.as_uuid()).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Keeps the run's last error visible while its job waits for another attempt.
    pub async fn note_error(&self, run: DiscoveryRunId, error: &str) -> Result<(), StoreError> {
        sqlx::query("update discovery_run set error = $2 where run_id = $1")
            .bind(run.as_uuid())
            .bind(error)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Runs whose job ended without the worker closing them (rescued on its last
    /// attempt, cancelled) are closed with the job's outcome. Leader only.
    pub async fn close_orphaned_runs(&self) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await?;
        let closed: Vec<(Uuid, Uuid)> = sqlx::query_as(
            "update discovery_run r set
                 state = case when j.state = 'cancelled' then 'cancelled' else 'failed' end,
                 finished_at = now(), error = coalesce(j.last_error, r.error)
             from job j
             where r.job_id = j.job_id and r.state in ('queued', 'running')
               and j.state in ('discarded', 'cancelled')
             returning r.organization_id, r.run_id",
        )
        .fetch_all(&mut *tx)
        .await?;
        for (organization, run) in &closed {
            drop_run_rows(&mut tx, *organization, *run).await?;
        }
        tx.commit().await?;
        Ok(closed.len() as u64)
    }

    /// Queues a run for every organization whose schedule is due, and moves each
    /// schedule on with `next`. Leader only; rows are locked, so a second leader (after
    /// a failover) cannot queue the same scan twice.
    pub async fn queue_due_scans(
        &self,
        limit: i64,
        next: impl Fn(Option<&str>) -> DateTime<Utc>,
    ) -> Result<usize, StoreError> {
        let mut tx = self.pool.begin().await?;
        let due: Vec<(Uuid, Uuid, Option<String>)> = sqlx::query_as(
            "select organization_id, msp_id, scan_schedule from organization
             where next_scan_at <= now() order by next_scan_at limit $1 for update skip locked",
        )
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?;
        for (organization, msp, schedule) in &due {
            queue_run(
                &mut tx,
                MspId::from_uuid(*msp),
                OrganizationId::from_uuid(*organization),
                Trigger::Schedule,
                Mode::Full,
            )
            .await?;
            sqlx::query("update organization set next_scan_at = $2 where organization_id = $1")
                .bind(organization)
                .bind(next(schedule.as_deref()))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(due.len())
    }
}
