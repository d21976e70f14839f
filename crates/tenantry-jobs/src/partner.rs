//! Partner mode's jobs. `partner_sync` reads the partner tenant's GDAP relationships and
//! customers (with the connection's one credential, a token in the partner tenant), saves
//! them, then verifies every customer at once (a token in each customer tenant, then the
//! validator's reads there): consent, permissions and the app's directory roles.
//! `partner_verify` checks one customer after a consent callback and again on the
//! re-validation backoff schedule while the consent propagates, so the badges move by
//! themselves.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tenantry_domain::partner::{ConsentState, Relationship};
use tenantry_graph::partner::{self, GdapRelationship};
use tenantry_graph::{Credentials, GraphAccess, TokenFailure, ValidationError};
use tenantry_store::StoreError;
use tenantry_store::jobs::{PartnerSyncJob, PartnerVerifyJob};
use tenantry_store::partner::{PartnerCredential, PartnerStore, SyncedCustomer, Verification};
use tenantry_store::queue::ClaimedJob;
use tenantry_store::revalidation::SCHEDULE_MINUTES;
use uuid::Uuid;

use crate::engine::{JobFuture, JobHandler, Outcome};

/// Customers verified at once by a sync: each verification is two round trips to
/// Microsoft, so 1,000 customers take about 1,000 / 16 × 2 round trips.
const VERIFY_CONCURRENCY: usize = 16;

fn database(error: &StoreError) -> Outcome {
    Outcome::Retry(format!("database: {}", tenantry_domain::error_chain(error)))
}

fn relationship(r: GdapRelationship) -> (Uuid, String, Relationship) {
    (
        r.customer_tenant_id,
        r.customer_display_name,
        Relationship {
            id: r.id,
            display_name: r.display_name,
            status: r.status,
            roles: r.roles,
            end_date_time: r.end_date_time,
            auto_extend_duration: r.auto_extend_duration,
        },
    )
}

/// What one verification found, or why it found nothing.
enum Checked {
    Found(Verification),
    /// Microsoft did not answer: nothing is known.
    Later(String),
    /// The partner credential itself was refused in the customer tenant.
    Refused(String),
}

async fn verify(graph: &GraphAccess, credential: &PartnerCredential, tenant: Uuid) -> Checked {
    let credentials = match Credentials::stored(
        &tenant.to_string(),
        &credential.client_id.to_string(),
        &credential.credential,
    ) {
        Ok(credentials) => credentials,
        Err(error) => return Checked::Refused(format!("stored credential: {error}")),
    };
    // The capabilities the connection serves (names it stored itself; an unknown one
    // would be a corrupt row, and is left out rather than widening the check).
    let capabilities: Option<Vec<tenantry_domain::capabilities::Capability>> = credential
        .capabilities
        .as_ref()
        .map(|names| names.iter().filter_map(|n| n.parse().ok()).collect());
    match graph
        .validator()
        .validate_customer(&credentials, capabilities.as_deref())
        .await
    {
        Ok(report) => {
            let status = report.status();
            match serde_json::to_value(&report) {
                Ok(mut value) => {
                    value["organization_status"] = serde_json::json!(status.as_str());
                    Checked::Found(Verification {
                        found: ConsentState::Complete,
                        missing_permissions: Vec::new(),
                        report: Some(value),
                    })
                }
                Err(error) => Checked::Later(format!("report: {error}")),
            }
        }
        Err(ValidationError::ServicePrincipalNotFound) => Checked::Found(Verification {
            found: ConsentState::NotConsented,
            missing_permissions: Vec::new(),
            report: None,
        }),
        Err(ValidationError::MissingPermissions {
            missing, report, ..
        }) => Checked::Found(Verification {
            found: ConsentState::PermissionsMissing,
            missing_permissions: missing,
            report: serde_json::to_value(*report).ok(),
        }),
        Err(ValidationError::UpstreamUnavailable { cause, .. }) => Checked::Later(cause),
        Err(other) => Checked::Refused(other.to_string()),
    }
}

/// Verifies one customer and saves what it found; `Ok(Some(state))` when saved.
async fn verify_and_save(
    store: &PartnerStore,
    graph: &GraphAccess,
    credential: &PartnerCredential,
    tenant: Uuid,
) -> Result<Option<ConsentState>, Outcome> {
    match verify(graph, credential, tenant).await {
        Checked::Found(verification) => store
            .save_verification(
                credential.partner_connection_id,
                tenant,
                credential.credential_id,
                &verification,
            )
            .await
            .map_err(|e| database(&e)),
        Checked::Later(cause) => Err(Outcome::Retry(format!("Microsoft is unavailable: {cause}"))),
        Checked::Refused(detail) => Err(Outcome::Discard(format!(
            "the partner credential was refused in customer {tenant}: {detail}"
        ))),
    }
}

pub struct PartnerSyncHandler {
    store: PartnerStore,
    graph: GraphAccess,
}

impl PartnerSyncHandler {
    pub fn new(store: PartnerStore, graph: GraphAccess) -> Self {
        Self { store, graph }
    }

    async fn sync(&self, args: PartnerSyncJob) -> Outcome {
        let id = args.partner_connection_id;
        let credential = match self.store.credential(id).await {
            Ok(credential) => Arc::new(credential),
            Err(StoreError::NotFound) => {
                return Outcome::Discard("the partner connection no longer exists".into());
            }
            Err(error) => return database(&error),
        };
        let token = match self
            .graph
            .organization_token(
                credential.tenant_id,
                credential.client_id,
                &credential.credential,
            )
            .await
        {
            Ok(token) => token,
            Err(TokenFailure::Unavailable(cause)) => {
                return Outcome::Retry(format!("Microsoft's login service: {cause}"));
            }
            Err(refused) => {
                let detail = format!(
                    "Entra refused the partner connection's credential in the partner tenant ({refused}); replace it (PUT /api/v1/partner-connections/{id}/credentials)"
                );
                return self.failed(id, detail).await;
            }
        };
        let http = self.graph.http();
        let (relationships, listed) = tokio::join!(
            partner::relationships(http, &token),
            partner::customers(http, &token)
        );
        let (relationships, listed) = match (relationships, listed) {
            (Ok(r), Ok(c)) => (r, c),
            (Err(failure), _) | (_, Err(failure)) if failure.is_outage() => {
                return Outcome::Retry(format!("Microsoft Graph: {failure}"));
            }
            (Err(failure), _) | (_, Err(failure)) => {
                let detail = format!(
                    "the partner tenant refused to list GDAP relationships ({failure}): grant the app DelegatedAdminRelationship.Read.All in the partner tenant"
                );
                return self.failed(id, detail).await;
            }
        };
        let names: BTreeMap<Uuid, String> = listed
            .into_iter()
            .map(|c| (c.tenant_id, c.display_name))
            .collect();
        let mut customers: BTreeMap<Uuid, SyncedCustomer> = BTreeMap::new();
        for r in relationships {
            let (tenant, name, relationship) = relationship(r);
            customers
                .entry(tenant)
                .or_insert_with(|| SyncedCustomer {
                    tenant_id: tenant,
                    display_name: names.get(&tenant).cloned().unwrap_or(name),
                    relationships: Vec::new(),
                })
                .relationships
                .push(relationship);
        }
        let customers: Vec<SyncedCustomer> = customers.into_values().collect();
        if let Err(error) = self.store.save_sync(id, &customers).await {
            return database(&error);
        }
        self.verify_all(&credential, &customers).await
    }

    async fn failed(&self, id: Uuid, detail: String) -> Outcome {
        match self.store.save_sync_failure(id, &detail).await {
            Ok(()) => Outcome::Discard(detail),
            Err(error) => database(&error),
        }
    }

    /// Verifies every customer, `VERIFY_CONCURRENCY` at a time; one whose consent is
    /// propagating gets its own `partner_verify` on the backoff schedule.
    async fn verify_all(
        &self,
        credential: &Arc<PartnerCredential>,
        customers: &[SyncedCustomer],
    ) -> Outcome {
        let permits = Arc::new(tokio::sync::Semaphore::new(VERIFY_CONCURRENCY));
        let mut tasks = tokio::task::JoinSet::new();
        for customer in customers {
            let (store, graph, credential, permits) = (
                self.store.clone(),
                self.graph.clone(),
                Arc::clone(credential),
                Arc::clone(&permits),
            );
            let tenant = customer.tenant_id;
            tasks.spawn(async move {
                let _permit = permits.acquire_owned().await;
                (
                    tenant,
                    verify_and_save(&store, &graph, &credential, tenant).await,
                )
            });
        }
        let mut later = None;
        while let Some(joined) = tasks.join_next().await {
            match joined {
                // Consented but not (yet) complete: Microsoft may still be propagating
                // a consent given outside Tenantry's link, so it is checked again.
                Ok((
                    tenant,
                    Ok(Some(ConsentState::Propagating | ConsentState::PermissionsMissing)),
                )) => {
                    let minutes = SCHEDULE_MINUTES[0];
                    if let Err(error) = self
                        .store
                        .queue_verification(
                            credential.msp_id,
                            credential.partner_connection_id,
                            tenant,
                            chrono::Duration::minutes(minutes),
                        )
                        .await
                    {
                        return database(&error);
                    }
                }
                Ok((_, Ok(_))) => {}
                // One customer's outage or refusal does not undo the others' answers; the
                // sync is retried for an outage (verifications are idempotent).
                Ok((tenant, Err(Outcome::Retry(cause)))) => {
                    later.get_or_insert(format!("customer {tenant}: {cause}"));
                }
                Ok((tenant, Err(outcome))) => {
                    tracing::warn!(%tenant, ?outcome, "a customer could not be verified");
                }
                Err(error) => later = Some(format!("a verification task failed: {error}")),
            }
        }
        match later {
            Some(cause) => Outcome::Retry(cause),
            None => Outcome::Done,
        }
    }
}

impl JobHandler for PartnerSyncHandler {
    type Args = PartnerSyncJob;

    fn timeout(&self) -> Duration {
        Duration::from_secs(1800)
    }

    fn run<'a>(&'a self, _job: &'a ClaimedJob, args: PartnerSyncJob) -> JobFuture<'a> {
        Box::pin(self.sync(args))
    }
}

pub struct PartnerVerifyHandler {
    store: PartnerStore,
    graph: GraphAccess,
}

impl PartnerVerifyHandler {
    pub fn new(store: PartnerStore, graph: GraphAccess) -> Self {
        Self { store, graph }
    }

    async fn check(&self, job: &ClaimedJob, args: PartnerVerifyJob) -> Outcome {
        let credential = match self.store.credential(args.partner_connection_id).await {
            Ok(credential) => credential,
            Err(StoreError::NotFound) => {
                return Outcome::Discard("the partner connection no longer exists".into());
            }
            Err(error) => return database(&error),
        };
        // The validator takes a new token each time: roles reach only tokens minted
        // after they propagate.
        match verify_and_save(&self.store, &self.graph, &credential, args.tenant_id).await {
            Ok(Some(state @ (ConsentState::Propagating | ConsentState::PermissionsMissing))) => {
                // The first check came seconds after the callback; then 1, 5, 15, … min.
                let next = usize::try_from(job.snoozes).unwrap_or(usize::MAX);
                match (SCHEDULE_MINUTES.get(next), state) {
                    (Some(minutes), _) => Outcome::Snooze(
                        Duration::from_secs(60 * u64::try_from(*minutes).unwrap_or(120)),
                        format!("consent is {}; checking again in {minutes} min", state.as_str()),
                    ),
                    // Permissions still missing after two hours: a state the badge shows,
                    // with its fix, not a failed job.
                    (None, ConsentState::PermissionsMissing) => Outcome::Done,
                    (None, _) => Outcome::Discard(
                        "consent has not reached Microsoft after the last scheduled check; open a new consent link".into(),
                    ),
                }
            }
            Ok(_) => Outcome::Done,
            Err(outcome) => outcome,
        }
    }
}

impl JobHandler for PartnerVerifyHandler {
    type Args = PartnerVerifyJob;

    fn timeout(&self) -> Duration {
        Duration::from_secs(120)
    }

    fn run<'a>(&'a self, job: &'a ClaimedJob, args: PartnerVerifyJob) -> JobFuture<'a> {
        Box::pin(self.check(job, args))
    }
}
