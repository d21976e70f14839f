//! The credential a request gives for an app registration, exactly one of: a client
//! secret, an uploaded private key with its certificate (PEM), or a certificate Tenantry
//! generated (`POST /api/v1/certificates`). Read into [`Credentials`] for the validator,
//! each refusal a problem with a stable code; nothing here ever quotes the input.

use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::json;
use tenantry_domain::ErrorCode;
use tenantry_graph::certificate::{self, CertificateError};
use tenantry_graph::{Credentials, ValidationError};
use tenantry_store::{MspScope, StoreError};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::problem::{ApiError, FieldError, Problem};

/// A certificate credential: the private key and certificate as PEM, or the id of a
/// certificate Tenantry generated for the MSP.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CertificateInput {
    /// The RSA private key (2048 bits or more), unencrypted PEM: PKCS#8 (`-----BEGIN
    /// PRIVATE KEY-----`) or PKCS#1 (`-----BEGIN RSA PRIVATE KEY-----`); at most 16 KiB.
    /// Sealed at rest and never returned.
    #[schema(max_length = 16384)]
    pub private_key_pem: Option<String>,
    /// The X.509 certificate of that key, PEM (`-----BEGIN CERTIFICATE-----`); at most
    /// 16 KiB. The one registered on the app in Entra.
    #[schema(max_length = 16384)]
    pub certificate_pem: Option<String>,
    /// Instead of the two PEMs: a certificate generated with `POST /api/v1/certificates`
    /// and registered on the app in Entra. Using it moves its key into the organization.
    pub generated_id: Option<Uuid>,
}

/// The credential, checked and ready for the validator, and the generated key pair it
/// came from (used up when it is stored).
pub(crate) struct Given {
    pub credentials: Credentials,
    pub generated: Option<Uuid>,
}

fn problem(code: ErrorCode, detail: impl Into<String>) -> Problem {
    Problem::new(code, StatusCode::UNPROCESSABLE_ENTITY, detail)
}

fn described(problem: Problem) -> ApiError {
    ApiError::Described {
        problem: Box::new(problem),
        retry_after_secs: None,
    }
}

/// The problem for an uploaded key or certificate that is refused.
pub(crate) fn certificate_problem(error: &CertificateError) -> ApiError {
    let p = match error {
        CertificateError::TooLarge(part) => problem(
            ErrorCode::CertificateTooLarge,
            format!(
                "The {part} is longer than {} bytes; send one PEM block of an RSA key or certificate.",
                certificate::MAX_PEM_BYTES
            ),
        )
        .with("field", json!(part.field())),
        CertificateError::Malformed { part, reason } => problem(
            ErrorCode::CertificateMalformed,
            format!("The {part} cannot be read: {reason}."),
        )
        .with("field", json!(part.field())),
        CertificateError::KeyMismatch => problem(
            ErrorCode::CertificateKeyMismatch,
            "The private key is not the key of this certificate. Upload the key the certificate was made for (openssl x509 -noout -pubkey and openssl pkey -pubout print the same public key for a matching pair).",
        ),
        CertificateError::Expired(at) => problem(
            ErrorCode::CertificateExpired,
            format!("The certificate expired at {at}. Create a new certificate (or let Tenantry generate one), register it on the app in Entra and upload it here."),
        )
        .with("not_after", json!(at)),
        CertificateError::NotYetValid(at) => problem(
            ErrorCode::CertificateNotYetValid,
            format!("The certificate is valid only from {at}. Upload one that is valid now."),
        )
        .with("not_before", json!(at)),
        CertificateError::Generation(cause) => return ApiError::internal(cause),
    };
    described(p)
}

/// Reads the credential of a body that names `tenant` and `client_id`. Field problems of
/// the tenant, client id or secret are added to `errors` (answered with the body's other
/// field problems; `Ok(None)` then); every other refusal is answered at once.
pub(crate) async fn read(
    scope: &MspScope<'_>,
    tenant: &str,
    client_id: &str,
    client_secret: Option<&str>,
    certificate: Option<CertificateInput>,
    errors: &mut Vec<FieldError>,
) -> Result<Option<Given>, ApiError> {
    let checked = match (client_secret, certificate) {
        (Some(_), Some(_)) => {
            return Err(described(problem(
                ErrorCode::CredentialAmbiguous,
                "Send either `client_secret` or `certificate`, not both.",
            )));
        }
        (None, None) => {
            return Err(described(problem(
                ErrorCode::CredentialMissing,
                "Send the app's credential: `client_secret` (a client secret's Value), or `certificate` (`private_key_pem` and `certificate_pem`, or the `generated_id` of a certificate generated with POST /api/v1/certificates).",
            )));
        }
        (Some(secret), None) => (Credentials::preflight(tenant, client_id, secret), None),
        (None, Some(input)) => {
            let (certificate, generated) = read_certificate(scope, input).await?;
            (
                Credentials::with_certificate(tenant, client_id, certificate),
                generated,
            )
        }
    };
    match checked {
        (Ok(credentials), generated) => Ok(Some(Given {
            credentials,
            generated,
        })),
        (Err(ValidationError::Invalid(problems)), _) => {
            errors.extend(problems.into_iter().map(|(f, m)| FieldError::new(f, m)));
            Ok(None)
        }
        (Err(other), _) if errors.is_empty() => {
            Err(super::organizations::validation_problem(other))
        }
        (Err(_), _) => Ok(None),
    }
}

async fn read_certificate(
    scope: &MspScope<'_>,
    input: CertificateInput,
) -> Result<(tenantry_domain::CertificateCredential, Option<Uuid>), ApiError> {
    match (input.private_key_pem, input.certificate_pem, input.generated_id) {
        (None, None, Some(id)) => match scope.open_generated_certificate(id).await {
            Ok(certificate) => Ok((certificate, Some(id))),
            Err(StoreError::NotFound) => Err(ApiError::validation(vec![FieldError::new(
                "certificate.generated_id",
                "names no certificate generated for this MSP that is still unused",
            )])),
            Err(error) => Err(error.into()),
        },
        (Some(key), Some(certificate_pem), None) => {
            certificate::from_pem(&key, &certificate_pem, chrono::Utc::now())
                .map(|c| (c, None))
                .map_err(|e| certificate_problem(&e))
        }
        (_, _, Some(_)) => Err(described(problem(
            ErrorCode::CredentialAmbiguous,
            "Send either `generated_id` or the two PEMs in `certificate`, not both.",
        ))),
        (key, _, None) => Err(described(
            problem(
                ErrorCode::CredentialMissing,
                "A certificate needs both `private_key_pem` and `certificate_pem` (or a `generated_id`).",
            )
            .with(
                "field",
                json!(if key.is_none() {
                    "certificate.private_key_pem"
                } else {
                    "certificate.certificate_pem"
                }),
            ),
        )),
    }
}
