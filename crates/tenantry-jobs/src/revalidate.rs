//! The `revalidate` job: an organization that failed validation because consent (or the
//! enterprise application) had not reached Microsoft yet is checked again 1, 5, 15, 30, 60
//! and 120 minutes later. Each wait is a snooze, so it spends no attempt; the job ends as
//! soon as the credentials pass, are refused outright, or the schedule runs out.

use std::time::Duration;

use serde_json::json;
use tenantry_domain::OrganizationStatus;
use tenantry_graph::{Credentials, ValidationError, Validator};
use tenantry_store::StoreError;
use tenantry_store::jobs::RevalidateJob;
use tenantry_store::queue::ClaimedJob;
use tenantry_store::revalidation::{RevalidationStore, SCHEDULE_MINUTES};

use crate::engine::{JobFuture, JobHandler, Outcome};

pub struct RevalidateHandler {
    store: RevalidationStore,
    validator: Validator,
}

impl RevalidateHandler {
    pub fn new(store: RevalidationStore, validator: Validator) -> Self {
        Self { store, validator }
    }

    async fn revalidate(&self, job: &ClaimedJob, args: RevalidateJob) -> Outcome {
        let organization = args.organization_id;
        let stored = match self.store.credential(organization).await {
            Ok(stored) => stored,
            Err(StoreError::NotFound) => {
                return Outcome::Discard("the organization no longer exists".into());
            }
            Err(error) => {
                return Outcome::Retry(format!(
                    "database: {}",
                    tenantry_domain::error_chain(&error)
                ));
            }
        };
        let credentials = match Credentials::stored(
            &stored.tenant_id.to_string(),
            &stored.client_id.to_string(),
            &stored.credential,
        ) {
            Ok(credentials) => credentials,
            Err(error) => return Outcome::Discard(format!("stored credentials: {error}")),
        };
        let checked = if stored.partner_connection_id.is_some() {
            self.validator.validate_customer(&credentials, None).await
        } else {
            self.validator.validate(&credentials, None).await
        };
        let (status, report, outcome) = match checked {
            Ok(report) => {
                let status = report.status();
                // Granted but not honoured yet (Exchange's live check): the schedule
                // goes on, as it does for consent that has not propagated.
                let outcome = if report.propagating() {
                    next_check(job, "a capability is granted but still propagating")
                } else {
                    Outcome::Done
                };
                match serde_json::to_value(&report) {
                    Ok(value) => (Ok(status), value, outcome),
                    Err(error) => return Outcome::Retry(format!("report: {error}")),
                }
            }
            Err(ValidationError::UpstreamUnavailable { cause, .. }) => {
                return Outcome::Retry(format!("Microsoft is unavailable: {cause}"));
            }
            Err(
                error @ (ValidationError::MissingPermissions { .. }
                | ValidationError::ServicePrincipalNotFound),
            ) => {
                let outcome = next_check(job, &error.to_string());
                (
                    Err(error.failure()),
                    json!({"failed": error.to_string()}),
                    outcome,
                )
            }
            Err(error) => (
                Err(error.failure()),
                json!({"failed": error.to_string()}),
                Outcome::Discard(format!("the credentials are refused: {error}")),
            ),
        };
        // Outages returned above: every failure left sets a status by the one rule.
        let status = match status {
            Ok(status) => status,
            Err(failure) => match OrganizationStatus::after_failed_validation(failure) {
                Some(status) => status,
                None => return Outcome::Retry("Microsoft is unavailable".into()),
            },
        };
        match self
            .store
            .save(organization, stored.credential_id, status, &report)
            .await
        {
            Ok(true) => outcome,
            // The secret was replaced meanwhile; its own validation stands.
            Ok(false) => Outcome::Done,
            Err(error) => Outcome::Retry(format!(
                "database: {}",
                tenantry_domain::error_chain(&error)
            )),
        }
    }
}

impl JobHandler for RevalidateHandler {
    type Args = RevalidateJob;

    fn timeout(&self) -> Duration {
        Duration::from_secs(120)
    }

    fn run<'a>(&'a self, job: &'a ClaimedJob, args: RevalidateJob) -> JobFuture<'a> {
        Box::pin(self.revalidate(job, args))
    }
}

/// The next scheduled check while `why` holds, or the end of the schedule.
fn next_check(job: &ClaimedJob, why: &str) -> Outcome {
    // `snoozes` counts the checks already made after the first.
    let next = usize::try_from(job.snoozes).unwrap_or(usize::MAX) + 1;
    match SCHEDULE_MINUTES.get(next) {
        Some(minutes) => Outcome::Snooze(
            Duration::from_secs(60 * u64::try_from(*minutes).unwrap_or(120)),
            format!("still failing ({why}); checking again in {minutes} min"),
        ),
        None => Outcome::Discard(format!(
            "still failing after the last scheduled check ({why}); grant admin consent in Entra, then re-validate"
        )),
    }
}
