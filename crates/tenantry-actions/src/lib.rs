//! Action submission, protocol-neutral: the checks a request for an identity action
//! passes (parameters, targets resolved against the inventory then Graph, the tenant's
//! capability, the privileged-target guard, the policy, the idempotency key) before it is
//! stored, queued or held for approval.
//!
//! Two front ends call it: the HTTP API (`POST /api/v1/organizations/{id}/actions`) and
//! the webhook playbook job. Each maps [`SubmitError`] its own way: the API to
//! problem+json, the playbook to a step's outcome or a retry. Neither HTTP nor the job
//! engine is linked here (docs/architecture.md, "Actions and webhooks").

mod error;
mod lookup;
mod submit;
mod subscriptions;

pub use error::{FieldProblem, MissingCapability, SubmitError};
pub use lookup::{OrganizationGraph, organization_graph, resolve_employee};
pub use submit::{SubmitRequest, Submitted, WebhookOrigin, request_hash, submit};
pub use subscriptions::unsubscribe_everything;
