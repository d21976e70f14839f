//! Stable error codes. Clients branch on `code`, never on `title` or `detail`, so a code,
//! once shipped, keeps its name and meaning. The HTTP status that goes with each code is
//! decided in the API crate; here are only the names and human titles.

use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    /// The request body, query or path is malformed or fails validation.
    InvalidRequest,
    /// No API key, or one that is malformed, unknown, wrong or revoked.
    Unauthenticated,
    /// The key is valid but its role or organization limit does not allow this.
    Forbidden,
    /// No such route, or no such object visible to the caller.
    NotFound,
    MethodNotAllowed,
    /// The request took longer than the server's limit.
    RequestTimeout,
    /// Revoking this key would leave the MSP without an owner key.
    LastOwnerKey,
    PayloadTooLarge,
    UnsupportedMediaType,
    /// Too many failed attempts or requests; see Retry-After.
    RateLimited,
    /// Something broke on our side; the request id leads to the cause in the logs.
    InternalError,
    /// Entra refused the pasted credentials; `reason` says which part is wrong.
    InvalidCredentials,
    /// The credentials work, but for another tenant than the one given.
    TenantMismatch,
    /// The app has no enterprise application (service principal) in the tenant.
    ServicePrincipalNotFound,
    /// Graph application permissions still need admin consent.
    MissingPermissions,
    /// The tenant is already connected to an organization.
    TenantAlreadyBound,
    /// Microsoft timed out, failed or throttled; retry later.
    UpstreamUnavailable,
    /// The service cannot serve yet (database unreachable or not migrated).
    NotReady,
    /// The database is out of reach (down, restarting or out of connections); retry after
    /// `Retry-After`.
    DatabaseUnavailable,
    /// The request's headers are larger, or more, than the server accepts.
    RequestHeadersTooLarge,
    /// The job is not in a state that allows this (e.g. cancelling a finished job).
    JobStateConflict,
    /// The Idempotency-Key was already used for a request with a different body.
    IdempotencyKeyReused,
    /// A target user or group could not be found in the inventory or in Microsoft Graph.
    TargetNotFound,
    /// The organization's app lacks a Graph permission or directory role the action needs; `missing_permissions` and `missing_directory_roles` say what to grant.
    CapabilityUnavailable,
    /// The organization's policy turns this action off.
    ActionDisabled,
    /// An employee may act only on themselves, and only for actions the policy opens to self-service.
    SelfServiceNotAllowed,
    /// The privileged-target guard refuses actions on accounts that hold privileged directory roles.
    PrivilegedTarget,
    /// Four eyes: the requester cannot approve or deny their own request.
    SelfApproval,
    /// The caller is not among the approvers the policy names for this request.
    NotAnApprover,
    /// The action is not in a state that allows this (e.g. approving an expired request).
    ActionStateConflict,
    /// A generated password is revealed exactly once and destroyed after 24 hours.
    SecretGone,
    /// The Tenantry-Signature header is missing, malformed, or matches no signing secret of the endpoint.
    WebhookSignatureInvalid,
    /// The signature's timestamp is more than 5 minutes from the server's clock.
    WebhookTimestampStale,
    /// Both a client secret and a certificate were given; send one.
    CredentialAmbiguous,
    /// Neither a client secret nor a (complete) certificate was given.
    CredentialMissing,
    /// The private key or the certificate is not readable PEM of the kind Entra takes (an
    /// unencrypted RSA key of 2048 bits or more, an X.509 certificate); `field` says which.
    CertificateMalformed,
    /// The private key is not the one of the certificate.
    CertificateKeyMismatch,
    /// The certificate's notAfter has passed.
    CertificateExpired,
    /// The certificate's notBefore is still ahead.
    CertificateNotYetValid,
    /// The private key or the certificate is longer than the service accepts; `field` says which.
    CertificateTooLarge,
    /// The partner connection's app is not multi-tenant (`signInAudience` is not
    /// `AzureADMultipleOrgs`), so no customer can consent to it.
    PartnerAppNotMultitenant,
    /// The partner connection still serves organizations; delete or move them first, or
    /// delete with `?force`.
    PartnerConnectionInUse,
    /// The customer has not consented to the partner app (or its consent is incomplete),
    /// so it cannot be connected yet.
    CustomerNotReady,
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 43] = [
        ErrorCode::InvalidRequest,
        ErrorCode::Unauthenticated,
        ErrorCode::Forbidden,
        ErrorCode::NotFound,
        ErrorCode::MethodNotAllowed,
        ErrorCode::RequestTimeout,
        ErrorCode::LastOwnerKey,
        ErrorCode::PayloadTooLarge,
        ErrorCode::UnsupportedMediaType,
        ErrorCode::RateLimited,
        ErrorCode::InternalError,
        ErrorCode::NotReady,
        ErrorCode::DatabaseUnavailable,
        ErrorCode::RequestHeadersTooLarge,
        ErrorCode::InvalidCredentials,
        ErrorCode::TenantMismatch,
        ErrorCode::ServicePrincipalNotFound,
        ErrorCode::MissingPermissions,
        ErrorCode::TenantAlreadyBound,
        ErrorCode::UpstreamUnavailable,
        ErrorCode::JobStateConflict,
        ErrorCode::IdempotencyKeyReused,
        ErrorCode::TargetNotFound,
        ErrorCode::CapabilityUnavailable,
        ErrorCode::ActionDisabled,
        ErrorCode::SelfServiceNotAllowed,
        ErrorCode::PrivilegedTarget,
        ErrorCode::SelfApproval,
        ErrorCode::NotAnApprover,
        ErrorCode::ActionStateConflict,
        ErrorCode::SecretGone,
        ErrorCode::WebhookSignatureInvalid,
        ErrorCode::WebhookTimestampStale,
        ErrorCode::CredentialAmbiguous,
        ErrorCode::CredentialMissing,
        ErrorCode::CertificateMalformed,
        ErrorCode::CertificateKeyMismatch,
        ErrorCode::CertificateExpired,
        ErrorCode::CertificateNotYetValid,
        ErrorCode::CertificateTooLarge,
        ErrorCode::PartnerAppNotMultitenant,
        ErrorCode::PartnerConnectionInUse,
        ErrorCode::CustomerNotReady,
    ];

    /// The machine-readable code, as sent in the `code` member.
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "INVALID_REQUEST",
            ErrorCode::Unauthenticated => "UNAUTHENTICATED",
            ErrorCode::Forbidden => "FORBIDDEN",
            ErrorCode::NotFound => "NOT_FOUND",
            ErrorCode::MethodNotAllowed => "METHOD_NOT_ALLOWED",
            ErrorCode::RequestTimeout => "REQUEST_TIMEOUT",
            ErrorCode::LastOwnerKey => "LAST_OWNER_KEY",
            ErrorCode::PayloadTooLarge => "PAYLOAD_TOO_LARGE",
            ErrorCode::UnsupportedMediaType => "UNSUPPORTED_MEDIA_TYPE",
            ErrorCode::RateLimited => "RATE_LIMITED",
            ErrorCode::InternalError => "INTERNAL_ERROR",
            ErrorCode::NotReady => "NOT_READY",
            ErrorCode::DatabaseUnavailable => "DATABASE_UNAVAILABLE",
            ErrorCode::RequestHeadersTooLarge => "REQUEST_HEADERS_TOO_LARGE",
            ErrorCode::InvalidCredentials => "INVALID_CREDENTIALS",
            ErrorCode::TenantMismatch => "TENANT_MISMATCH",
            ErrorCode::ServicePrincipalNotFound => "SERVICE_PRINCIPAL_NOT_FOUND",
            ErrorCode::MissingPermissions => "MISSING_PERMISSIONS",
            ErrorCode::TenantAlreadyBound => "TENANT_ALREADY_BOUND",
            ErrorCode::UpstreamUnavailable => "UPSTREAM_UNAVAILABLE",
            ErrorCode::JobStateConflict => "JOB_STATE_CONFLICT",
            ErrorCode::IdempotencyKeyReused => "IDEMPOTENCY_KEY_REUSED",
            ErrorCode::TargetNotFound => "TARGET_NOT_FOUND",
            ErrorCode::CapabilityUnavailable => "CAPABILITY_UNAVAILABLE",
            ErrorCode::ActionDisabled => "ACTION_DISABLED",
            ErrorCode::SelfServiceNotAllowed => "SELF_SERVICE_NOT_ALLOWED",
            ErrorCode::PrivilegedTarget => "PRIVILEGED_TARGET",
            ErrorCode::SelfApproval => "SELF_APPROVAL",
            ErrorCode::NotAnApprover => "NOT_AN_APPROVER",
            ErrorCode::ActionStateConflict => "ACTION_STATE_CONFLICT",
            ErrorCode::SecretGone => "SECRET_GONE",
            ErrorCode::WebhookSignatureInvalid => "WEBHOOK_SIGNATURE_INVALID",
            ErrorCode::WebhookTimestampStale => "WEBHOOK_TIMESTAMP_STALE",
            ErrorCode::CredentialAmbiguous => "CREDENTIAL_AMBIGUOUS",
            ErrorCode::CredentialMissing => "CREDENTIAL_MISSING",
            ErrorCode::CertificateMalformed => "CERTIFICATE_MALFORMED",
            ErrorCode::CertificateKeyMismatch => "CERTIFICATE_KEY_MISMATCH",
            ErrorCode::CertificateExpired => "CERTIFICATE_EXPIRED",
            ErrorCode::CertificateNotYetValid => "CERTIFICATE_NOT_YET_VALID",
            ErrorCode::CertificateTooLarge => "CERTIFICATE_TOO_LARGE",
            ErrorCode::PartnerAppNotMultitenant => "PARTNER_APP_NOT_MULTITENANT",
            ErrorCode::PartnerConnectionInUse => "PARTNER_CONNECTION_IN_USE",
            ErrorCode::CustomerNotReady => "CUSTOMER_NOT_READY",
        }
    }

    /// A short, human summary that does not change from occurrence to occurrence.
    pub const fn title(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "The request is invalid",
            ErrorCode::Unauthenticated => "Authentication required",
            ErrorCode::Forbidden => "Not allowed for this API key",
            ErrorCode::NotFound => "Not found",
            ErrorCode::MethodNotAllowed => "Method not allowed",
            ErrorCode::RequestTimeout => "The request took too long",
            ErrorCode::LastOwnerKey => "The last owner key cannot be revoked",
            ErrorCode::PayloadTooLarge => "The request body is too large",
            ErrorCode::UnsupportedMediaType => "Unsupported media type",
            ErrorCode::RateLimited => "Too many requests",
            ErrorCode::InternalError => "Internal error",
            ErrorCode::NotReady => "Service not ready",
            ErrorCode::DatabaseUnavailable => "The database is unavailable",
            ErrorCode::RequestHeadersTooLarge => "The request headers are too large",
            ErrorCode::InvalidCredentials => "The credentials were refused by Microsoft",
            ErrorCode::TenantMismatch => "The credentials belong to another tenant",
            ErrorCode::ServicePrincipalNotFound => "The app is not set up in the tenant",
            ErrorCode::MissingPermissions => "Missing Microsoft Graph permissions",
            ErrorCode::TenantAlreadyBound => "The tenant is already connected",
            ErrorCode::JobStateConflict => "The job cannot change to that state",
            ErrorCode::UpstreamUnavailable => "Microsoft is unavailable",
            ErrorCode::IdempotencyKeyReused => "The Idempotency-Key was used with another request",
            ErrorCode::TargetNotFound => "The target was not found in the tenant",
            ErrorCode::CapabilityUnavailable => "The tenant has not granted what this action needs",
            ErrorCode::ActionDisabled => "This action is turned off for the organization",
            ErrorCode::SelfServiceNotAllowed => "Self-service is not allowed for this request",
            ErrorCode::PrivilegedTarget => "The target holds a privileged directory role",
            ErrorCode::SelfApproval => "Nobody approves their own request",
            ErrorCode::NotAnApprover => "The caller may not decide this request",
            ErrorCode::ActionStateConflict => "The action is not in a state that allows this",
            ErrorCode::SecretGone => "The secret was already revealed or has expired",
            ErrorCode::WebhookSignatureInvalid => "The webhook signature is missing or wrong",
            ErrorCode::WebhookTimestampStale => "The webhook signature is too old or too new",
            ErrorCode::CredentialAmbiguous => "Both a client secret and a certificate were given",
            ErrorCode::CredentialMissing => "No client secret or certificate was given",
            ErrorCode::CertificateMalformed => "The private key or certificate is not readable",
            ErrorCode::CertificateKeyMismatch => {
                "The private key does not belong to the certificate"
            }
            ErrorCode::CertificateExpired => "The certificate has expired",
            ErrorCode::CertificateNotYetValid => "The certificate is not valid yet",
            ErrorCode::CertificateTooLarge => "The private key or certificate is too large",
            ErrorCode::PartnerAppNotMultitenant => "The partner app is not multi-tenant",
            ErrorCode::PartnerConnectionInUse => "Organizations still use this partner connection",
            ErrorCode::CustomerNotReady => "The customer has not consented to the partner app",
        }
    }

    /// The RFC 9457 `type` URI: a stable page describing the problem.
    pub fn type_uri(self) -> String {
        format!(
            "https://tenantry.dev/problems/{}",
            self.as_str().to_ascii_lowercase().replace('_', "-")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_serialize_as_their_stable_names() {
        for code in ErrorCode::ALL {
            let json = serde_json::to_value(code).expect("serializes");
            assert_eq!(json, serde_json::json!(code.as_str()));
        }
        assert_eq!(
            ErrorCode::LastOwnerKey.type_uri(),
            "https://tenantry.dev/problems/last-owner-key"
        );
    }
}
