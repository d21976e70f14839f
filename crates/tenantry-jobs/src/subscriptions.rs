//! The `graph_subscriptions` job: makes Microsoft Graph's subscriptions on an
//! organization's users and groups match what the MSP chose. On: each resource has a
//! subscription (created, with Graph's validation handshake against our receiver, or
//! renewed before it expires; one Graph lost is created again). Off: they are deleted.
//! The leader queues this job when a renewal falls due; lifecycle notifications queue it
//! when Graph removed a subscription or wants it reauthorized.

use std::time::Duration;

use chrono::{SecondsFormat, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use tenantry_domain::OrganizationId;
use tenantry_graph::GraphAccess;
use tenantry_graph::actions::{Body, WriteFailure, send};
use tenantry_store::StoreError;
use tenantry_store::change_notifications::{ChangeNotificationStore, SubscriptionState};
use tenantry_store::jobs::SubscriptionsJob;
use tenantry_store::queue::ClaimedJob;

use crate::credentials::{NoToken, organization_token};
use crate::engine::{JobFuture, JobHandler, Outcome};

/// How long a subscription is asked for: well under Graph's 41,760-minute limit for
/// directory resources (graph-facts §8), renewed a day before it ends.
const LIFETIME: chrono::Duration = chrono::Duration::days(3);
const RESOURCES: [&str; 2] = ["users", "groups"];

pub struct SubscriptionHandler {
    store: ChangeNotificationStore,
    graph: GraphAccess,
    refusals: tenantry_store::TokenRefusals,
    /// Where Graph reaches this service (`http.public_url`); without it nothing can
    /// subscribe.
    public_url: Option<String>,
}

fn write_outcome(failure: WriteFailure, what: &str) -> Outcome {
    match failure {
        WriteFailure::Throttled { retry_after, .. } => Outcome::Snooze(
            retry_after.unwrap_or(Duration::from_secs(5)),
            format!("throttled while {what}"),
        ),
        WriteFailure::Unavailable { cause, .. } => {
            Outcome::Retry(format!("Microsoft Graph while {what}: {cause}"))
        }
        // A failed handshake (our receiver unreachable) is worth retrying; a refusal for
        // permissions is not.
        WriteFailure::Refused {
            status: 403,
            code,
            message,
            ..
        } => Outcome::Discard(format!("Graph refused {what} ({code}): {message}")),
        WriteFailure::Refused {
            status,
            code,
            message,
            ..
        } => Outcome::Retry(format!(
            "Graph answered {status} while {what} ({code}): {message}"
        )),
    }
}

impl SubscriptionHandler {
    pub fn new(
        store: ChangeNotificationStore,
        graph: GraphAccess,
        refusals: tenantry_store::TokenRefusals,
        public_url: Option<String>,
    ) -> Self {
        Self {
            store,
            graph,
            refusals,
            public_url,
        }
    }

    async fn run_job(&self, args: SubscriptionsJob) -> Outcome {
        let organization = args.organization_id;
        let state = match self.store.state(organization).await {
            Ok(state) => state,
            Err(StoreError::NotFound) => {
                return Outcome::Discard("the organization is gone".into());
            }
            Err(error) => {
                return Outcome::Retry(format!(
                    "database: {}",
                    tenantry_domain::error_chain(&error)
                ));
            }
        };
        let token = match self.token(organization).await {
            Ok(token) => token,
            Err(outcome) => return outcome,
        };
        if state.enabled {
            self.subscribe(organization, &state, &token).await
        } else {
            self.unsubscribe(&state, &token).await
        }
    }

    async fn token(&self, organization: OrganizationId) -> Result<SecretString, Outcome> {
        let stored = self.store.credential(organization).await.map_err(|e| {
            Outcome::Retry(format!("database: {}", tenantry_domain::error_chain(&e)))
        })?;
        organization_token(
            &self.graph,
            crate::credentials::Refusals {
                log: &self.refusals,
                organization,
            },
            stored.tenant_id,
            stored.client_id,
            &stored.credential,
        )
        .await
        .map_err(|missing| match missing {
            NoToken::Later(cause) => Outcome::Retry(cause),
            NoToken::Refused(detail) => Outcome::Discard(detail),
        })
    }

    async fn subscribe(
        &self,
        organization: OrganizationId,
        state: &SubscriptionState,
        token: &SecretString,
    ) -> Outcome {
        let Some(base) = self.public_url.as_deref() else {
            return Outcome::Discard(
                "no public URL is configured (http.public_url), so Graph cannot reach this service"
                    .into(),
            );
        };
        let Some(client_state) = &state.client_state else {
            return Outcome::Discard("change notifications have no clientState".into());
        };
        let url = format!("{}/hooks/graph/{organization}", base.trim_end_matches('/'));
        for resource in RESOURCES {
            let expires = Utc::now() + LIFETIME;
            let expiration = expires.to_rfc3339_opts(SecondsFormat::Millis, true);
            let existing = state.subscriptions.iter().find(|s| s.resource == resource);
            if let Some(existing) = existing {
                if existing.renew_at > Utc::now() {
                    continue;
                }
                let renewed = send(
                    self.graph.http(),
                    token,
                    "PATCH",
                    &format!("/subscriptions/{}", existing.subscription_id),
                    Body::Json(&json!({"expirationDateTime": expiration})),
                )
                .await;
                match renewed {
                    Ok(_) => {
                        if let Err(error) = self
                            .store
                            .save_subscription(
                                organization,
                                resource,
                                &existing.subscription_id,
                                expires,
                                true,
                            )
                            .await
                        {
                            return Outcome::Retry(format!(
                                "database: {}",
                                tenantry_domain::error_chain(&error)
                            ));
                        }
                        continue;
                    }
                    // Gone at Microsoft: create it again below.
                    Err(WriteFailure::Refused { status: 404, .. }) => {}
                    Err(failure) => return write_outcome(failure, "renewing a subscription"),
                }
            }
            let created = send(
                self.graph.http(),
                token,
                "POST",
                "/subscriptions",
                Body::Json(&json!({
                    "changeType": "updated,deleted",
                    "notificationUrl": url,
                    "lifecycleNotificationUrl": url,
                    "resource": resource,
                    "expirationDateTime": expiration,
                    "clientState": client_state.expose_secret(),
                })),
            )
            .await;
            let answer = match created {
                Ok(answer) => answer,
                Err(failure) => return write_outcome(failure, "creating a subscription"),
            };
            let Some(id) = answer.body["id"].as_str() else {
                return Outcome::Retry("Graph's subscription carried no id".into());
            };
            if let Err(error) = self
                .store
                .save_subscription(organization, resource, id, expires, false)
                .await
            {
                return Outcome::Retry(format!(
                    "database: {}",
                    tenantry_domain::error_chain(&error)
                ));
            }
        }
        Outcome::Done
    }

    async fn unsubscribe(&self, state: &SubscriptionState, token: &SecretString) -> Outcome {
        for subscription in &state.subscriptions {
            let deleted = send(
                self.graph.http(),
                token,
                "DELETE",
                &format!("/subscriptions/{}", subscription.subscription_id),
                Body::None,
            )
            .await;
            match deleted {
                Ok(_) | Err(WriteFailure::Refused { status: 404, .. }) => {}
                Err(failure) => return write_outcome(failure, "deleting a subscription"),
            }
            if let Err(error) = self
                .store
                .forget_subscription(&subscription.subscription_id)
                .await
            {
                return Outcome::Retry(format!(
                    "database: {}",
                    tenantry_domain::error_chain(&error)
                ));
            }
        }
        Outcome::Done
    }
}

impl JobHandler for SubscriptionHandler {
    type Args = SubscriptionsJob;

    fn timeout(&self) -> Duration {
        // The validation handshake may take Graph up to 10 s per subscription.
        Duration::from_secs(90)
    }

    fn run<'a>(&'a self, _job: &'a ClaimedJob, args: SubscriptionsJob) -> JobFuture<'a> {
        Box::pin(self.run_job(args))
    }
}
