//! `/api/v1/jobs`: the MSP's background jobs with their attempts, last error and next
//! run; owners and admins may retry a failed job or cancel a waiting or running one.

use axum::Json;
use serde::Deserialize;
use tenantry_domain::{JobId, OrganizationId};
use tenantry_store::queue::{JobFilter, JobRecord};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::caller::Caller;
use crate::extract::{ApiPath, ApiQuery};
use crate::pagination::{PageQuery, Paginated};
use crate::problem::{ApiError, FieldError, Problem};

const PROBLEM: &str = "application/problem+json";

#[derive(serde::Serialize, ToSchema)]
pub struct JobView {
    pub id: Uuid,
    pub kind: String,
    pub organization_id: Option<Uuid>,
    /// `available` (queued), `scheduled` (snoozed for throttling), `retryable` (waiting
    /// after a failure), `running`, `completed`, `discarded` (failed for good) or
    /// `cancelled`.
    pub state: String,
    #[schema(value_type = Object)]
    pub args: serde_json::Value,
    pub attempt: i32,
    pub max_attempts: i32,
    /// Times the job waited for Microsoft's throttling (no attempt spent).
    pub snoozes: i32,
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// When it runs next (for waiting jobs).
    pub next_run_at: Option<chrono::DateTime<chrono::Utc>>,
    pub attempted_at: Option<chrono::DateTime<chrono::Utc>>,
    pub finalized_at: Option<chrono::DateTime<chrono::Utc>>,
    pub cancel_requested: bool,
    pub last_error: Option<String>,
    /// The last ten errors: `attempt`, `at`, `error`.
    #[schema(value_type = Vec<Object>)]
    pub errors: serde_json::Value,
}

impl From<JobRecord> for JobView {
    fn from(j: JobRecord) -> Self {
        use tenantry_domain::JobState;
        let waiting = matches!(
            j.state,
            JobState::Available | JobState::Scheduled | JobState::Retryable
        );
        Self {
            id: j.job_id.as_uuid(),
            kind: j.kind,
            organization_id: j.organization_id.map(Uuid::from),
            state: j.state.as_str().to_owned(),
            args: j.args,
            attempt: j.attempt,
            max_attempts: j.max_attempts,
            snoozes: j.snoozes,
            created_at: j.created_at,
            next_run_at: waiting.then_some(j.scheduled_at),
            attempted_at: j.attempted_at,
            finalized_at: j.finalized_at,
            cancel_requested: j.cancel_requested,
            last_error: j.last_error,
            errors: j.errors,
        }
    }
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct JobQuery {
    /// Only this organization's; one the key cannot see (another MSP's, or unknown)
    /// answers 404, never an empty list.
    organization: Option<Uuid>,
    kind: Option<String>,
    state: Option<String>,
    #[param(minimum = 1, maximum = 100)]
    limit: Option<u32>,
    cursor: Option<String>,
}

/// The MSP's jobs, newest first.
#[utoipa::path(get, path = "/api/v1/jobs", tag = "jobs", security(("api_key" = [])), params(JobQuery),
    responses((status = 200, description = "A page of jobs", body = Paginated<JobView>),
        (status = 401, description = "Missing or invalid key", body = Problem, content_type = PROBLEM)))]
pub async fn list_jobs(
    caller: Caller,
    ApiQuery(query): ApiQuery<JobQuery>,
) -> Result<Json<Paginated<JobView>>, ApiError> {
    let page = PageQuery::new(query.limit, query.cursor).to_page()?;
    if let Some(state) = &query.state
        && state.parse::<tenantry_domain::JobState>().is_err()
    {
        return Err(ApiError::validation(vec![FieldError::new(
            "state",
            format!("must be one of {}", tenantry_domain::JobState::names()),
        )]));
    }
    if query.kind.as_ref().is_some_and(|k| k.len() > 64) {
        return Err(ApiError::validation(vec![FieldError::new(
            "kind",
            "must be at most 64 characters",
        )]));
    }
    let filter = JobFilter {
        organization: query.organization.map(OrganizationId::from_uuid),
        kind: query.kind,
        state: query.state,
    };
    let rows = caller.scope().jobs(&filter, page).await?;
    Ok(Json(Paginated::from_rows(
        rows,
        page,
        |j| j.job_id.as_uuid(),
        JobView::from,
    )))
}

/// One job.
#[utoipa::path(get, path = "/api/v1/jobs/{id}", tag = "jobs", security(("api_key" = [])),
    params(("id" = Uuid, Path, description = "The job's id")),
    responses((status = 200, description = "The job", body = JobView),
        (status = 404, description = "No such job for this key", body = Problem, content_type = PROBLEM)))]
pub async fn get_job(
    caller: Caller,
    ApiPath(id): ApiPath<JobId>,
) -> Result<Json<JobView>, ApiError> {
    Ok(Json(caller.scope().job(id).await?.into()))
}

/// Run a failed, cancelled or waiting job again now, with fresh attempts (owner or admin).
#[utoipa::path(post, path = "/api/v1/jobs/{id}/retry", tag = "jobs", security(("api_key" = [])),
    params(("id" = Uuid, Path, description = "The job's id")),
    responses((status = 200, description = "Queued again", body = JobView),
        (status = 403, description = "Not an owner or admin key", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such job for this key", body = Problem, content_type = PROBLEM),
        (status = 409, description = "JOB_STATE_CONFLICT: running or completed", body = Problem, content_type = PROBLEM)))]
pub async fn retry_job(
    caller: Caller,
    ApiPath(id): ApiPath<JobId>,
) -> Result<Json<JobView>, ApiError> {
    Ok(Json(caller.scope().retry_job(id).await?.into()))
}

/// Cancel a waiting job at once, or a running one at its next heartbeat (owner or admin).
#[utoipa::path(post, path = "/api/v1/jobs/{id}/cancel", tag = "jobs", security(("api_key" = [])),
    params(("id" = Uuid, Path, description = "The job's id")),
    responses((status = 200, description = "Cancelled (or cancellation requested)", body = JobView),
        (status = 403, description = "Not an owner or admin key", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such job for this key", body = Problem, content_type = PROBLEM),
        (status = 409, description = "JOB_STATE_CONFLICT: already finished", body = Problem, content_type = PROBLEM)))]
pub async fn cancel_job(
    caller: Caller,
    ApiPath(id): ApiPath<JobId>,
) -> Result<Json<JobView>, ApiError> {
    Ok(Json(caller.scope().cancel_job(id).await?.into()))
}
