//! The Exchange Online admin API (graph-facts-next §2): cmdlets through `InvokeCommand`
//! with an app-only token for `https://outlook.office365.com`. Microsoft Graph cannot
//! create shared mailboxes, grant FullAccess or SendAs, write distribution-group
//! membership or read mailbox forwarding; these cmdlets can. Paging re-POSTs the same
//! body to `@odata.nextLink` (§2.7); throttling, outages and refusals are told apart on the
//! structured answer, never on message text ([`failure`]); typed results in [`mailbox`]
//! and [`rules`].

pub mod failure;
pub mod mailbox;
pub mod rules;

use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use uuid::Uuid;

pub use failure::ExchangeFailure;

use crate::http_client::GraphHttp;

/// The static anchor the Exchange Online module itself uses for tenant-wide cmdlets
/// (graph-facts-next §2.4).
const SYSTEM_MAILBOX: &str = "SystemMailbox{bb558c35-97f1-4cb9-8ff7-d53741dc928c}";
/// Rows per page asked for (`Prefer: odata.maxpagesize`, at most 1000).
pub const PAGE_SIZE: u32 = 1000;
/// Tries of one page while Exchange throttles, and the longest the waits may add up to.
const MAX_THROTTLED_TRIES: usize = 10;
const THROTTLE_BUDGET: std::time::Duration = std::time::Duration::from_secs(5);
/// Pages followed at most for one cmdlet (a million rows), so a server that always
/// answers a next link cannot keep a job forever.
const MAX_PAGES: usize = 1000;

/// One cmdlet to run: its name and parameters (JSON, as real clients send them:
/// switches as booleans, `Confirm: false` on writes, `null` to clear).
#[derive(Clone, Debug)]
pub struct Cmdlet {
    pub name: &'static str,
    pub parameters: Value,
    /// `$select`: the properties to answer (all ~250 otherwise, for mailboxes).
    pub select: Option<&'static str>,
}

impl Cmdlet {
    pub fn new(name: &'static str, parameters: Value) -> Self {
        Self {
            name,
            parameters,
            select: None,
        }
    }

    pub fn select(mut self, properties: &'static str) -> Self {
        self.select = Some(properties);
        self
    }

    fn body(&self) -> Value {
        json!({"CmdletInput": {"CmdletName": self.name, "Parameters": self.parameters}})
    }
}

/// A tenant's Exchange Online admin API with one token.
pub struct Exchange<'a> {
    http: &'a GraphHttp,
    token: &'a SecretString,
    tenant: Uuid,
}

impl<'a> Exchange<'a> {
    pub fn new(http: &'a GraphHttp, token: &'a SecretString, tenant: Uuid) -> Self {
        Self {
            http,
            token,
            tenant,
        }
    }

    /// Runs `cmdlet` and returns every row of every page (`value`; empty for cmdlets that
    /// answer nothing on success, such as group membership).
    pub async fn run(&self, cmdlet: &Cmdlet) -> Result<Vec<Value>, ExchangeFailure> {
        let body = cmdlet.body();
        let mut url = self.http.config().invoke_command(&self.tenant.to_string());
        if let Some(select) = cmdlet.select {
            url = format!("{url}?$select={select}");
        }
        let mut rows = Vec::new();
        for _ in 0..MAX_PAGES {
            let page = self.post(&url, &body, cmdlet.name).await?;
            if let Some(values) = page.get("value").and_then(Value::as_array) {
                rows.extend(values.iter().cloned());
            }
            match page.get("@odata.nextLink").and_then(Value::as_str) {
                // The next page is the same body POSTed to the link (§2.7).
                Some(next) => url = next.to_owned(),
                None => return Ok(rows),
            }
        }
        Err(ExchangeFailure::Unavailable(format!(
            "{} answered more than {MAX_PAGES} pages",
            cmdlet.name
        )))
    }

    /// One page, asked again while Exchange throttles with a short `Retry-After` (a few
    /// seconds in all, as the Graph reader does); a longer wait is the caller's to snooze.
    async fn post(&self, url: &str, body: &Value, cmdlet: &str) -> Result<Value, ExchangeFailure> {
        let mut waited = std::time::Duration::ZERO;
        for _ in 0..MAX_THROTTLED_TRIES {
            match self.post_once(url, body, cmdlet).await {
                Err(ExchangeFailure::Throttled { retry_after }) => {
                    let wait = retry_after.unwrap_or(std::time::Duration::from_secs(1));
                    if waited + wait > THROTTLE_BUDGET {
                        return Err(ExchangeFailure::Throttled { retry_after });
                    }
                    tokio::time::sleep(wait).await;
                    waited += wait;
                }
                other => return other,
            }
        }
        Err(ExchangeFailure::Throttled { retry_after: None })
    }

    async fn post_once(
        &self,
        url: &str,
        body: &Value,
        cmdlet: &str,
    ) -> Result<Value, ExchangeFailure> {
        let response = self
            .http
            .client
            .post(url)
            .bearer_auth(self.token.expose_secret())
            .header(
                "X-AnchorMailbox",
                format!("APP:{SYSTEM_MAILBOX}@{}", self.tenant),
            )
            .header("Prefer", format!("odata.maxpagesize={PAGE_SIZE}"))
            .header("X-ResponseFormat", "json")
            .header("X-CmdletName", cmdlet)
            .header("client-request-id", Uuid::new_v4().to_string())
            .json(body)
            .send()
            .await
            .map_err(|e| {
                ExchangeFailure::Unavailable(if e.is_timeout() {
                    "timed out".into()
                } else {
                    "connection failed".into()
                })
            })?;
        failure::classify(response, cmdlet).await
    }
}
