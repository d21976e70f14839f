//! The states of Tenantry's records, one enum each, with the names the database's CHECK
//! constraints and the API use. A state is parsed once where a row is read, so the rest
//! of the code matches on variants instead of comparing strings.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A state name that is not one of the enum's.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{value:?} is not a {what} (expected one of {expected})")]
pub struct UnknownState {
    pub what: &'static str,
    pub value: String,
    pub expected: String,
}

macro_rules! states {
    ($(#[$doc:meta])* $name:ident, $what:literal { $($(#[$vdoc:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            $($(#[$vdoc])* $variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }

            /// Every name, comma-separated, for messages.
            pub fn names() -> String {
                Self::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = UnknownState;
            fn from_str(value: &str) -> Result<Self, UnknownState> {
                Self::ALL
                    .iter()
                    .copied()
                    .find(|s| s.as_str() == value)
                    .ok_or_else(|| UnknownState {
                        what: $what,
                        value: value.to_owned(),
                        expected: Self::names(),
                    })
            }
        }

        impl TryFrom<String> for $name {
            type Error = UnknownState;
            fn try_from(value: String) -> Result<Self, UnknownState> {
                value.parse()
            }
        }
    };
}

states!(
    /// An action request's lifecycle (docs/actions.md).
    ActionState, "action state" {
        PendingApproval = "pending_approval",
        Approved = "approved",
        Denied = "denied",
        Expired = "expired",
        Queued = "queued",
        Running = "running",
        Succeeded = "succeeded",
        Failed = "failed",
        PartiallySucceeded = "partially_succeeded",
    }
);

impl ActionState {
    /// Executed to its end, whatever the result.
    pub const fn has_run(self) -> bool {
        matches!(
            self,
            ActionState::Succeeded | ActionState::Failed | ActionState::PartiallySucceeded
        )
    }

    /// Nothing more will happen to it.
    pub const fn is_final(self) -> bool {
        self.has_run() || matches!(self, ActionState::Denied | ActionState::Expired)
    }
}

states!(
    /// A job's state in the queue (docs/jobs.md).
    JobState, "job state" {
        Available = "available",
        Scheduled = "scheduled",
        Retryable = "retryable",
        Running = "running",
        Completed = "completed",
        Discarded = "discarded",
        Cancelled = "cancelled",
    }
);

states!(
    /// A discovery run's state.
    RunState, "run state" {
        Queued = "queued",
        Running = "running",
        Succeeded = "succeeded",
        Failed = "failed",
        Cancelled = "cancelled",
    }
);

states!(
    /// A webhook delivery's state: its playbook's progress.
    WebhookEventState, "webhook event state" {
        Accepted = "accepted",
        Running = "running",
        WaitingForApproval = "waiting_for_approval",
        Completed = "completed",
        Failed = "failed",
        Ignored = "ignored",
    }
);

impl WebhookEventState {
    pub const fn is_final(self) -> bool {
        matches!(
            self,
            WebhookEventState::Completed | WebhookEventState::Failed | WebhookEventState::Ignored
        )
    }
}

states!(
    /// An organization's connection status, from its last validation.
    OrganizationStatus, "organization status" {
        Connected = "connected",
        NeedsAttention = "needs_attention",
        CredentialsInvalid = "credentials_invalid",
        SecretExpiring = "secret_expiring",
    }
);

/// How a validation failed, as far as the organization's status is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValidationFailure {
    /// Microsoft did not answer: nothing is known about the credentials.
    Outage,
    /// The credentials work, but consent or the enterprise application has not reached
    /// Microsoft yet (or was never given): someone must grant something.
    ConsentPending,
    /// Entra refused the credentials themselves.
    Refused,
}

impl OrganizationStatus {
    /// The one rule for the status after a failed validation: an outage changes nothing,
    /// missing consent needs attention, refused credentials are invalid.
    pub const fn after_failed_validation(failure: ValidationFailure) -> Option<Self> {
        match failure {
            ValidationFailure::Outage => None,
            ValidationFailure::ConsentPending => Some(OrganizationStatus::NeedsAttention),
            ValidationFailure::Refused => Some(OrganizationStatus::CredentialsInvalid),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_names_are_refused() {
        for state in ActionState::ALL {
            assert_eq!(state.as_str().parse::<ActionState>(), Ok(*state));
            assert_eq!(
                serde_json::to_value(state).expect("json"),
                serde_json::Value::String(state.as_str().to_owned())
            );
        }
        let unknown = "done".parse::<JobState>().expect_err("unknown");
        assert!(unknown.to_string().contains("available, scheduled"));
        assert_eq!(
            "waiting_for_approval".parse(),
            Ok(WebhookEventState::WaitingForApproval)
        );
    }

    #[test]
    fn a_failed_validation_sets_the_status_by_one_rule() {
        assert_eq!(
            OrganizationStatus::after_failed_validation(ValidationFailure::Outage),
            None
        );
        assert_eq!(
            OrganizationStatus::after_failed_validation(ValidationFailure::ConsentPending),
            Some(OrganizationStatus::NeedsAttention)
        );
        assert_eq!(
            OrganizationStatus::after_failed_validation(ValidationFailure::Refused),
            Some(OrganizationStatus::CredentialsInvalid)
        );
    }
}
