//! The discovery job: reads a tenant section by section (DESIGN §8), writes each page
//! into the run's own generation of the inventory as it arrives, and applies the run (its
//! generation becomes the inventory, or a delta is merged) in one transaction at the end.
//! A delta run reads users and groups by delta link and each other section only when it
//! is due by its own schedule or was asked for (`SectionPlan`); the run record says, per
//! section, what was read and why.
//!
//! Failure rules: a section Microsoft refuses for a missing permission is `skipped`, with
//! the permission named, and the run goes on; a throttled section is never marked done:
//! the job snoozes for Microsoft's `Retry-After` without spending an attempt, and the next
//! attempt resumes with the sections not yet staged; an outage retries the job with
//! backoff; refused credentials fail the run for good.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use tenantry_domain::discovery::{Reason, Section, SectionPlan, SectionState};
use tenantry_graph::GraphAccess;
use tenantry_graph::calls::GraphFailure;
use tenantry_graph::reader::{BATCH_LIMIT, Reader};
use tenantry_store::discovery::{
    Applied, Counters, Membership, Removals, RunContext, RunKeys, StagedObject,
};
use tenantry_store::jobs::DiscoveryJob;
use tenantry_store::queue::ClaimedJob;
use tenantry_store::{DiscoveryStore, StoreError};
use uuid::Uuid;

use crate::credentials::{NoToken, organization_token};
use crate::engine::{JobFuture, JobHandler, Outcome};

const USER_FIELDS: &str = "id,displayName,userPrincipalName,mail,givenName,surname,department,jobTitle,accountEnabled,officeLocation,businessPhones,mobilePhone,usageLocation,onPremisesSyncEnabled,assignedLicenses";
const GROUP_FIELDS: &str = "id,displayName,description,mail,mailEnabled,securityEnabled,groupTypes";

/// Runs discovery jobs.
pub struct DiscoveryHandler {
    store: DiscoveryStore,
    graph: GraphAccess,
    refusals: tenantry_store::TokenRefusals,
    /// Requests in flight per run (Graph throttles per app and tenant).
    requests_per_run: usize,
}

impl DiscoveryHandler {
    pub fn new(
        store: DiscoveryStore,
        graph: GraphAccess,
        refusals: tenantry_store::TokenRefusals,
    ) -> Self {
        Self {
            store,
            graph,
            refusals,
            requests_per_run: 4,
        }
    }
}

impl JobHandler for DiscoveryHandler {
    type Args = DiscoveryJob;

    fn timeout(&self) -> Duration {
        Duration::from_secs(30 * 60)
    }

    fn run<'a>(&'a self, job: &'a ClaimedJob, args: DiscoveryJob) -> JobFuture<'a> {
        Box::pin(self.discover(job, args))
    }
}

/// How one section ended.
enum SectionEnd {
    Staged {
        count: usize,
        delta_link: Option<String>,
    },
    Skipped,
    Failed(GraphFailure),
}

impl DiscoveryHandler {
    async fn discover(&self, job: &ClaimedJob, args: DiscoveryJob) -> Outcome {
        let context = match self.store.start(args.run_id).await {
            Ok(context) => context,
            Err(StoreError::NotFound) => {
                return Outcome::Discard("the run or its organization no longer exists".into());
            }
            Err(error) => {
                return Outcome::Retry(format!(
                    "database: {}",
                    tenantry_domain::error_chain(&error)
                ));
            }
        };
        let run = context.run.run_id;
        let keys = RunKeys {
            run,
            organization: context.run.organization_id,
            msp: context.msp_id,
        };
        let outcome = self.discover_run(&context).await;
        let recorded = match &outcome {
            Outcome::Done => Ok(()),
            Outcome::Discard(error) => self.store.fail(keys, error).await,
            Outcome::Retry(error) | Outcome::Snooze(_, error) => {
                if job.attempt >= job.max_attempts && matches!(outcome, Outcome::Retry(_)) {
                    self.store.fail(keys, error).await
                } else {
                    self.store.note_error(run, error).await
                }
            }
        };
        if let Err(error) = recorded {
            tracing::warn!(%run, %error, "recording the run's state failed");
        }
        outcome
    }

    fn section_worker(&self, context: &RunContext, reader: &Arc<Reader>) -> SectionWorker {
        SectionWorker {
            store: self.store.clone(),
            reader: Arc::clone(reader),
            keys: RunKeys {
                run: context.run.run_id,
                organization: context.run.organization_id,
                msp: context.msp_id,
            },
            client_id: context.client_id,
            in_use: InUse::of(&context.credential),
            delta: context.run.mode == "delta",
            exchange: Arc::new(ExchangeReach {
                graph: self.graph.clone(),
                tenant_id: context.tenant_id,
                credential: context.credential.clone(),
            }),
        }
    }

    /// What the run reads and why: everything in a full run; in a delta run users and
    /// groups, and each other section only when it is due or was asked for. Sections not
    /// read are recorded as `not_due` at once, with when they were read and fall due.
    async fn plan(&self, context: &RunContext) -> Result<SectionPlan, StoreError> {
        let run = &context.run;
        let now = Utc::now();
        if run.mode != "delta" {
            return Ok(SectionPlan::new(false, now, |_| SectionState::default()));
        }
        let states = self.store.section_states(run.organization_id).await?;
        let state = |section: Section| {
            states
                .iter()
                .find(|(name, _)| name == section.name())
                .map(|(_, state)| *state)
                .unwrap_or_default()
        };
        let plan = SectionPlan::new(true, now, state);
        for (section, reason) in &plan.sections {
            if reason.reads() || !run.sections[section.name()].is_null() {
                continue;
            }
            let known = state(*section);
            let due_at = known
                .read_at
                .zip(section.refresh_interval())
                .map(|(read, interval)| read + interval);
            let status = json!({
                "status": Reason::NotDue.as_str(),
                "reason": Reason::NotDue.as_str(),
                "read_at": known.read_at,
                "due_at": due_at,
                "detail": "not read by this delta run: read recently enough and not asked for; the previous run's rows stay",
            });
            self.store
                .record_section(run.run_id, section.name(), &status, Counters::default())
                .await?;
        }
        Ok(plan)
    }

    async fn discover_run(&self, context: &RunContext) -> Outcome {
        let run = &context.run;
        let token = match organization_token(
            &self.graph,
            crate::credentials::Refusals {
                log: &self.refusals,
                organization: context.run.organization_id,
            },
            context.tenant_id,
            context.client_id,
            &context.credential,
        )
        .await
        {
            Ok(token) => token,
            Err(NoToken::Later(cause)) => return Outcome::Retry(cause),
            Err(NoToken::Refused(detail)) => return Outcome::Discard(detail),
        };
        let reader = Arc::new(Reader::with_concurrency(
            self.graph.http().clone(),
            token,
            self.requests_per_run,
        ));
        let plan = match self.plan(context).await {
            Ok(plan) => plan,
            Err(error) => {
                return Outcome::Retry(format!(
                    "database: {}",
                    tenantry_domain::error_chain(&error)
                ));
            }
        };
        let mut sections: Vec<Section> = plan.reads().collect();
        // In partner mode the app's registration is the partner tenant's: its secret's
        // expiry is the partner connection's to track, and this tenant has no entry.
        if context.partner_connection_id.is_some() && sections.contains(&Section::AppSecret) {
            sections.retain(|s| *s != Section::AppSecret);
            let status = json!({
                "status": "skipped",
                "reason": "partner_mode",
                "detail": "the app is registered in the partner tenant; its credential is the partner connection's, whose expiry the connection shows",
            });
            if let Err(error) = self
                .store
                .record_section(
                    run.run_id,
                    Section::AppSecret.name(),
                    &status,
                    Counters::default(),
                )
                .await
            {
                return Outcome::Retry(format!(
                    "database: {}",
                    tenantry_domain::error_chain(&error)
                ));
            }
        }
        let sections: &[Section] = &sections;
        // Sections staged or skipped by an earlier attempt of this run are kept.
        let settled = |section: Section| {
            matches!(
                run.sections[section.name()]["status"].as_str(),
                Some("staged" | "skipped")
            )
        };
        let mut tasks = tokio::task::JoinSet::new();
        let groups_pending = sections.contains(&Section::GroupMembers);
        for section in sections.iter().copied() {
            if settled(section) || section == Section::GroupMembers {
                continue;
            }
            let worker = self.section_worker(context, &reader);
            tasks.spawn(async move {
                let end = worker.section(section).await;
                (section, end)
            });
        }
        let mut ends: Vec<(Section, SectionEnd)> = Vec::new();
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok(end) => ends.push(end),
                Err(error) => return Outcome::Retry(format!("a section task failed: {error}")),
            }
        }
        // Members need the groups: they run once groups are staged.
        let groups_ready = settled(Section::Groups)
            || ends
                .iter()
                .any(|(s, e)| *s == Section::Groups && matches!(e, SectionEnd::Staged { .. }));
        if groups_pending && !settled(Section::GroupMembers) && groups_ready {
            let worker = self.section_worker(context, &reader);
            ends.push((
                Section::GroupMembers,
                worker.section(Section::GroupMembers).await,
            ));
        }
        let mut applied: Vec<Applied> = Vec::new();
        let mut wait: Option<Duration> = None;
        let mut outage: Option<String> = None;
        for (section, end) in &ends {
            let reason = plan.reason(*section).as_str();
            let status = match end {
                SectionEnd::Staged { count, .. } => {
                    json!({"status": "staged", "count": count, "reason": reason})
                }
                SectionEnd::Skipped => {
                    json!({"status": "skipped", "reason": reason, "permission": section.permission(),
                    "detail": format!("Microsoft refused this section: grant the application permission {} (and admin consent) to include it.", section.permission())})
                }
                SectionEnd::Failed(GraphFailure::Throttled { retry_after }) => {
                    let after = retry_after.unwrap_or(Duration::from_secs(5));
                    wait = Some(wait.map_or(after, |w| w.max(after)));
                    json!({"status": "throttled", "retry_after_seconds": after.as_secs_f64()})
                }
                SectionEnd::Failed(failure) => {
                    outage.get_or_insert_with(|| format!("{}: {failure}", section.name()));
                    json!({"status": "failed", "error": failure.to_string()})
                }
            };
            let taken = reader.take_counters();
            let counters = Counters {
                requests: i32::try_from(taken.requests).unwrap_or(i32::MAX),
                round_trips: i32::try_from(taken.round_trips).unwrap_or(i32::MAX),
                throttled: i32::try_from(taken.throttled).unwrap_or(i32::MAX),
            };
            if let Err(error) = self
                .store
                .record_section(run.run_id, section.name(), &status, counters)
                .await
            {
                return Outcome::Retry(format!(
                    "database: {}",
                    tenantry_domain::error_chain(&error)
                ));
            }
        }
        if let Some(wait) = wait {
            return Outcome::Snooze(wait, "throttled by Microsoft Graph".into());
        }
        if let Some(outage) = outage {
            return Outcome::Retry(outage);
        }
        // Everything is staged or skipped (now or by an earlier attempt): apply.
        let mut secret_expires_at: Option<DateTime<Utc>> = None;
        for section in sections.iter().copied() {
            let staged_now = ends.iter().find(|(s, _)| *s == section);
            let staged = match staged_now {
                Some((_, SectionEnd::Staged { delta_link, .. })) => Some(delta_link.clone()),
                Some(_) => None,
                None => (run.sections[section.name()]["status"].as_str() == Some("staged"))
                    .then_some(None),
            };
            let Some(delta_link) = staged else { continue };
            let delta_link = match delta_link {
                Some(link) => Some(link),
                None if matches!(section, Section::Users | Section::Groups) => {
                    match self
                        .store
                        .staged_delta_link(run.run_id, section.name())
                        .await
                    {
                        Ok(link) => link,
                        Err(error) => {
                            return Outcome::Retry(format!(
                                "database: {}",
                                tenantry_domain::error_chain(&error)
                            ));
                        }
                    }
                }
                None => None,
            };
            if section == Section::AppSecret {
                let keys = RunKeys {
                    run: run.run_id,
                    organization: run.organization_id,
                    msp: context.msp_id,
                };
                match self.store.written_secret_expiry(keys).await {
                    Ok(expiry) => secret_expires_at = expiry,
                    Err(error) => {
                        return Outcome::Retry(format!(
                            "database: {}",
                            tenantry_domain::error_chain(&error)
                        ));
                    }
                }
            }
            applied.push(Applied {
                section: section.name(),
                delta_link,
            });
        }
        match self
            .store
            .apply(run, context.msp_id, &applied, secret_expires_at)
            .await
        {
            Ok(()) => Outcome::Done,
            Err(StoreError::NotFound) => {
                Outcome::Discard("the organization was deleted during the run".into())
            }
            Err(StoreError::JobConflict(why)) => Outcome::Discard(why.into()),
            Err(error) => Outcome::Retry(format!("applying the run: {error}")),
        }
    }
}

/// A member of a group or directory role, from Graph's directory object.
fn membership(parent: Uuid, member: &Value) -> Option<Membership> {
    let id = member["id"].as_str()?.parse::<Uuid>().ok()?;
    let kind = member["@odata.type"]
        .as_str()
        .map(|t| t.trim_start_matches("#microsoft.graph."))
        .unwrap_or("user");
    Some(Membership {
        parent,
        member: id,
        kind: kind.to_owned(),
    })
}

fn database(error: StoreError) -> GraphFailure {
    GraphFailure::Unavailable(format!(
        "database: {}",
        tenantry_domain::error_chain(&error)
    ))
}

/// Reads one section of one run.
/// An Exchange failure in the terms sections speak: a refusal of the cmdlet is a
/// skipped section, throttling and outages are retried, anything else fails it.
fn exchange_failure(failure: tenantry_graph::exchange::ExchangeFailure) -> GraphFailure {
    use tenantry_graph::exchange::ExchangeFailure as F;
    match failure {
        F::Throttled { retry_after } => GraphFailure::Throttled { retry_after },
        F::Unavailable(cause) => GraphFailure::Unavailable(cause),
        F::NotAllowed { .. } => GraphFailure::Denied {
            code: "Authorization_RequestDenied".into(),
        },
        F::NotFound { exception, .. } | F::Refused { exception, .. } => GraphFailure::Unexpected {
            status: 400,
            code: exception,
        },
    }
}

struct SectionWorker {
    store: DiscoveryStore,
    reader: Arc<Reader>,
    keys: RunKeys,
    client_id: Uuid,
    in_use: InUse,
    delta: bool,
    /// What the Exchange sections sign in with: their own token, for Exchange's resource.
    exchange: Arc<ExchangeReach>,
}

/// The organization's way to its Exchange Online admin API.
struct ExchangeReach {
    graph: GraphAccess,
    tenant_id: Uuid,
    credential: tenantry_domain::AppCredential,
}

impl ExchangeReach {
    /// The tenant's Exchange token (the process's cache makes the sections share one);
    /// a refusal is the section's to skip.
    async fn token(&self, client_id: Uuid) -> Result<secrecy::SecretString, GraphFailure> {
        self.graph
            .exchange_token(self.tenant_id, client_id, &self.credential)
            .await
            .map_err(|failure| match failure {
                tenantry_graph::TokenFailure::Unavailable(cause) => {
                    GraphFailure::Unavailable(cause)
                }
                _ => GraphFailure::Denied {
                    code: "Authorization_RequestDenied".into(),
                },
            })
    }
}

/// What the app-secret section looks for: the secret in use by Entra's hint (its first
/// three characters), or the certificate in use, whose expiry is its own.
enum InUse {
    Secret {
        prefix: String,
    },
    Certificate {
        thumbprint_s256: String,
        expires_at: DateTime<Utc>,
    },
}

impl InUse {
    fn of(credential: &tenantry_domain::AppCredential) -> Self {
        match credential {
            tenantry_domain::AppCredential::Secret(secret) => InUse::Secret {
                prefix: secret.expose_secret().chars().take(3).collect(),
            },
            tenantry_domain::AppCredential::Certificate(certificate) => InUse::Certificate {
                thumbprint_s256: certificate.thumbprint_s256.clone(),
                expires_at: certificate.not_after,
            },
        }
    }
}

impl SectionWorker {
    async fn section(&self, section: Section) -> SectionEnd {
        let name = section.name();
        if let Err(error) = self.store.clear_section(self.keys, name).await {
            return SectionEnd::Failed(database(error));
        }
        let result = match section {
            Section::Users => self.delta_section(name, "users", USER_FIELDS).await,
            Section::Groups => self.delta_section(name, "groups", GROUP_FIELDS).await,
            Section::GroupMembers => self.group_members().await,
            Section::DirectoryRoles => self.directory_roles().await,
            Section::Organization => {
                self.listed(name, "/organization?$select=id,displayName,verifiedDomains,countryLetterCode,tenantType", "id")
                    .await
            }
            Section::Domains => self.listed(name, "/domains", "id").await,
            Section::ServicePrincipals => {
                self.listed(name, "/servicePrincipals?$select=id,appId,displayName,accountEnabled,servicePrincipalType,appOwnerOrganizationId&$top=999", "id")
                    .await
            }
            Section::Licenses => self.listed(name, "/subscribedSkus", "skuId").await,
            Section::Devices => {
                self.listed(name, "/deviceManagement/managedDevices?$top=999", "id")
                    .await
            }
            Section::RiskyUsers => {
                self.listed(name, "/identityProtection/riskyUsers?$top=999", "id")
                    .await
            }
            Section::AppSecret => self.app_secret().await,
            Section::Mailboxes => self.mailboxes().await,
            Section::DistributionGroups => self.distribution_groups().await,
        };
        match result {
            Ok((count, delta_link)) => SectionEnd::Staged { count, delta_link },
            Err(GraphFailure::Denied { code }) if code == "Authorization_RequestDenied" => {
                if let Err(error) = self.store.clear_section(self.keys, name).await {
                    tracing::warn!(%error, "clearing a skipped section failed");
                }
                SectionEnd::Skipped
            }
            Err(failure) => SectionEnd::Failed(failure),
        }
    }

    /// Every mailbox (`Get-Mailbox -ResultSize Unlimited`, paged by the client), with its
    /// forwarding and whether that leaves the tenant. A refusal of the cmdlet (no
    /// `Exchange.ManageAsApp`, or no Exchange role: 401) skips the section.
    async fn mailboxes(&self) -> Result<(usize, Option<String>), GraphFailure> {
        use tenantry_graph::exchange::{Cmdlet, Exchange, mailbox};
        let reach = &self.exchange;
        let token = reach.token(self.client_id).await?;
        let exchange = Exchange::new(reach.graph.http(), &token, reach.tenant_id);
        let rows = exchange
            .run(
                &Cmdlet::new("Get-Mailbox", json!({"ResultSize": "Unlimited"}))
                    .select(mailbox::MAILBOX_PROPERTIES),
            )
            .await
            .map_err(exchange_failure)?;
        let mut mailboxes: Vec<mailbox::Mailbox> =
            rows.iter().filter_map(mailbox::Mailbox::from_row).collect();
        mailbox::flag_outside_forwarding(&mut mailboxes);
        // Who can read and send as each shared mailbox: a mailbox's two cmdlets together,
        // one mailbox after another, so this section keeps at most two requests in
        // flight (UNVERIFIED how far Exchange lets one app go in parallel per tenant;
        // graph-facts-next §2.12 knows no figure, and real clients stay at a few).
        for shared in mailboxes
            .iter_mut()
            .filter(|m| m.recipient_type_details == "SharedMailbox")
        {
            let identity = json!({"Identity": shared.primary_smtp_address});
            let full_access = Cmdlet::new("Get-MailboxPermission", identity.clone());
            let send_as = Cmdlet::new("Get-RecipientPermission", identity);
            let (full, send) = tokio::try_join!(exchange.run(&full_access), exchange.run(&send_as))
                .map_err(exchange_failure)?;
            shared.full_access = mailbox::full_access_holders(&full);
            shared.send_as = mailbox::send_as_trustees(&send);
        }
        for chunk in mailboxes.chunks(1000) {
            let objects = serde_json::to_string(chunk)
                .map_err(|e| GraphFailure::Unavailable(format!("mailboxes: {e}")))?;
            self.store
                .write_page(self.keys, Section::Mailboxes.name(), "guid", &objects)
                .await
                .map_err(database)?;
        }
        Ok((mailboxes.len(), None))
    }

    /// Every distribution group and mail-enabled security group with its members (one
    /// `Get-DistributionGroupMember` per group). Refused like mailboxes: skipped.
    async fn distribution_groups(&self) -> Result<(usize, Option<String>), GraphFailure> {
        use tenantry_graph::exchange::{Cmdlet, Exchange, mailbox};
        let reach = &self.exchange;
        let token = reach.token(self.client_id).await?;
        let exchange = Exchange::new(reach.graph.http(), &token, reach.tenant_id);
        let rows = exchange
            .run(&Cmdlet::new(
                "Get-DistributionGroup",
                json!({"ResultSize": "Unlimited"}),
            ))
            .await
            .map_err(exchange_failure)?;
        let mut groups: Vec<mailbox::DistributionGroup> = rows
            .iter()
            .filter_map(mailbox::DistributionGroup::from_row)
            .collect();
        for group in &mut groups {
            let members = exchange
                .run(&Cmdlet::new(
                    "Get-DistributionGroupMember",
                    json!({"Identity": group.primary_smtp_address, "ResultSize": "Unlimited"}),
                ))
                .await
                .map_err(exchange_failure)?;
            group.members = members
                .iter()
                .filter_map(mailbox::GroupMember::from_row)
                .collect();
        }
        for chunk in groups.chunks(500) {
            let objects = serde_json::to_string(chunk)
                .map_err(|e| GraphFailure::Unavailable(format!("groups: {e}")))?;
            self.store
                .write_page(
                    self.keys,
                    Section::DistributionGroups.name(),
                    "guid",
                    &objects,
                )
                .await
                .map_err(database)?;
        }
        Ok((groups.len(), None))
    }

    /// Pages through a collection, writing each page; returns the count.
    async fn listed(
        &self,
        section: &str,
        path: &str,
        id_field: &str,
    ) -> Result<(usize, Option<String>), GraphFailure> {
        let mut url = self.reader.url(path);
        let mut count = 0;
        loop {
            let page = self.reader.raw_page(&url).await?;
            count += page.count;
            self.store
                .write_page(self.keys, section, id_field, &page.objects)
                .await
                .map_err(database)?;
            match page.next_link {
                Some(next) => url = next,
                None => return Ok((count, None)),
            }
        }
    }

    /// Users or groups: a fresh delta round (full runs) or the changes since the stored
    /// delta link (delta runs; without a link, a fresh round). `@removed` items are kept
    /// aside as removals.
    async fn delta_section(
        &self,
        section: &str,
        resource: &str,
        fields: &str,
    ) -> Result<(usize, Option<String>), GraphFailure> {
        let stored = if self.delta {
            self.store
                .delta_link(self.keys.organization, section)
                .await
                .map_err(database)?
        } else {
            None
        };
        let fresh = || {
            self.reader
                .url(&format!("/{resource}/delta?$select={fields}&$top=999"))
        };
        let mut fresh_round = stored.is_none();
        let mut url = stored.unwrap_or_else(fresh);
        let mut count = 0;
        let mut first = true;
        // Whether a page of this attempt held removals (clearing the section at its start
        // dropped any kept by an earlier attempt).
        let mut removals = Removals::None;
        loop {
            let page = match self.reader.raw_page(&url).await {
                // An expired delta token: start a fresh round.
                Err(GraphFailure::Unexpected { status: 400, .. }) if self.delta && first => {
                    fresh_round = true;
                    url = fresh();
                    self.reader.raw_page(&url).await?
                }
                other => other?,
            };
            if first && self.delta && fresh_round {
                // A delta run reading everything again: what it does not list is gone.
                self.store
                    .stage(
                        self.keys.run,
                        "fresh_round",
                        &[StagedObject {
                            object_id: section.to_owned(),
                            data: json!(true),
                        }],
                    )
                    .await
                    .map_err(database)?;
            }
            first = false;
            count += page.count;
            removals = Removals::of_page(&page.objects, removals);
            self.store
                .write_delta_page(self.keys, section, &page.objects, removals)
                .await
                .map_err(database)?;
            if let Some(link) = page.delta_link {
                self.store
                    .stage(
                        self.keys.run,
                        "delta_link",
                        &[StagedObject {
                            object_id: section.to_owned(),
                            data: json!(link),
                        }],
                    )
                    .await
                    .map_err(database)?;
                return Ok((count, Some(link)));
            }
            match page.next_link {
                Some(next) => url = next,
                None => return Ok((count, None)),
            }
        }
    }

    /// Members of every group this run wrote (the changed ones, in delta runs), 20 groups
    /// per `$batch`.
    async fn group_members(&self) -> Result<(usize, Option<String>), GraphFailure> {
        let groups = self
            .store
            .written_group_ids(self.keys)
            .await
            .map_err(database)?;
        let mut count = 0;
        for chunk in groups.chunks(BATCH_LIMIT) {
            let urls: Vec<String> = chunk
                .iter()
                .map(|g| {
                    format!("/groups/{g}/members?$select=id,displayName,userPrincipalName&$top=999")
                })
                .collect();
            let results = self.reader.batch(&urls).await;
            // One write per batch, not per group.
            let mut members = Vec::new();
            let mut refreshed = Vec::new();
            for (group, result) in chunk.iter().zip(results) {
                let first = match result {
                    Ok(body) => body,
                    // Deleted since the groups were read: nothing to keep.
                    Err(GraphFailure::NotFound) => continue,
                    Err(failure) => return Err(failure),
                };
                let Ok(parent) = group.parse::<Uuid>() else {
                    continue;
                };
                self.collect_members(parent, first, &mut members).await?;
                refreshed.push(StagedObject {
                    object_id: group.clone(),
                    data: json!({}),
                });
            }
            count += members.len();
            self.store
                .write_memberships(self.keys, "group_members", &members)
                .await
                .map_err(database)?;
            self.store
                .stage(self.keys.run, "member_groups", &refreshed)
                .await
                .map_err(database)?;
        }
        Ok((count, None))
    }

    /// Collects a group's members from its first page, following further pages.
    async fn collect_members(
        &self,
        group: Uuid,
        first: Value,
        into: &mut Vec<Membership>,
    ) -> Result<(), GraphFailure> {
        let mut next = first["@odata.nextLink"].as_str().map(str::to_owned);
        if let Some(values) = first["value"].as_array() {
            into.extend(values.iter().filter_map(|member| membership(group, member)));
        }
        while let Some(link) = next {
            let page = self.reader.page(&link).await?;
            into.extend(
                page.value
                    .iter()
                    .filter_map(|member| membership(group, member)),
            );
            next = page.next_link;
        }
        Ok(())
    }

    /// Activated directory roles and their members (Graph does not page these).
    async fn directory_roles(&self) -> Result<(usize, Option<String>), GraphFailure> {
        let page = self
            .reader
            .raw_page(
                &self
                    .reader
                    .url("/directoryRoles?$select=id,displayName,roleTemplateId"),
            )
            .await?;
        self.store
            .write_page(self.keys, "directory_roles", "id", &page.objects)
            .await
            .map_err(database)?;
        let roles: Vec<Value> = serde_json::from_str(&page.objects)
            .map_err(|_| GraphFailure::Unavailable("unreadable answer".into()))?;
        let ids: Vec<Uuid> = roles
            .iter()
            .filter_map(|r| r["id"].as_str()?.parse().ok())
            .collect();
        for chunk in ids.chunks(BATCH_LIMIT) {
            let urls: Vec<String> = chunk
                .iter()
                .map(|r| format!("/directoryRoles/{r}/members?$select=id"))
                .collect();
            let results = self.reader.batch(&urls).await;
            let mut members = Vec::new();
            for (role, result) in chunk.iter().zip(results) {
                let body = match result {
                    Ok(body) => body,
                    Err(GraphFailure::NotFound) => continue,
                    Err(failure) => return Err(failure),
                };
                if let Some(values) = body["value"].as_array() {
                    members.extend(values.iter().filter_map(|member| membership(*role, member)));
                }
            }
            self.store
                .write_memberships(self.keys, "role_members", &members)
                .await
                .map_err(database)?;
        }
        Ok((page.count, None))
    }

    /// The app's own credentials: the expiry of the client secret in use (matched by
    /// Entra's hint, as the validator does), or of the certificate in use (its notAfter).
    async fn app_secret(&self) -> Result<(usize, Option<String>), GraphFailure> {
        let path = format!(
            "/applications(appId='{}')?$select=id,appId,displayName,passwordCredentials,keyCredentials",
            self.client_id
        );
        let page = self.reader.page(&self.reader.url(&path)).await?;
        let Some(app) = page.value.into_iter().next() else {
            return Ok((0, None));
        };
        let mut warnings = Vec::new();
        let (secret_in_use, certificate_in_use) = match &self.in_use {
            InUse::Secret { prefix } => {
                let expiry = tenantry_graph::validator::secret_expiry(&app, prefix, &mut warnings);
                (
                    json!({"key_id": expiry.key_id, "hint": expiry.hint, "expires_at": expiry.expires_at}),
                    Value::Null,
                )
            }
            InUse::Certificate {
                thumbprint_s256,
                expires_at,
            } => (
                Value::Null,
                json!({"thumbprint_s256": thumbprint_s256, "expires_at": expires_at}),
            ),
        };
        let kept = json!([{
            "id": app["id"].as_str().unwrap_or("application"),
            "displayName": app["displayName"],
            "appId": app["appId"],
            "passwordCredentials": app["passwordCredentials"],
            "keyCredentials": app["keyCredentials"],
            "secret_in_use": secret_in_use,
            "certificate_in_use": certificate_in_use,
        }]);
        self.store
            .write_page(self.keys, "app_secret", "id", &kept.to_string())
            .await
            .map_err(database)?;
        Ok((1, None))
    }
}
