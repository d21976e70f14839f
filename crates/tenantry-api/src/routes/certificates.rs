//! `/api/v1/certificates`: key pairs Tenantry generates for an MSP (owner or admin). The
//! answer carries the public certificate (PEM, and a `.cer` download) to register on the
//! app in Entra; the private key is sealed at once and never leaves the service. A
//! connection (`POST /api/v1/organizations`, `PUT …/credentials`) then names it by
//! `certificate.generated_id`, which moves the key into the organization's credential.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use tenantry_domain::ErrorCode;
use tenantry_graph::certificate;
use tenantry_store::GeneratedCertificate;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::caller::Caller;
use crate::extract::{ApiJson, ApiPath};
use crate::problem::{ApiError, FieldError, Problem};

const PROBLEM: &str = "application/problem+json";
/// The subject's common name when none is asked for.
const DEFAULT_COMMON_NAME: &str = "Tenantry";
const MAX_COMMON_NAME: usize = 64;

/// What to put in the generated certificate.
#[derive(Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GenerateCertificate {
    /// The subject's common name (1–64 characters; default `Tenantry`), shown in Entra's
    /// certificate list as `CN=…`.
    pub common_name: Option<String>,
}

/// A generated certificate: everything public about it, never its private key.
#[derive(Serialize, ToSchema)]
pub struct GeneratedCertificateView {
    pub id: Uuid,
    /// The certificate, PEM: upload it (or the `.cer` download) in Entra under App
    /// registrations → the app → Certificates & secrets → Certificates.
    pub certificate_pem: String,
    /// Where the same certificate is served DER-encoded, as a `.cer` file.
    pub download_url: String,
    /// SHA-256 thumbprint, base64url: the client assertions' `x5t#S256`.
    pub thumbprint_s256: String,
    pub not_before: chrono::DateTime<chrono::Utc>,
    pub not_after: chrono::DateTime<chrono::Utc>,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

impl From<GeneratedCertificate> for GeneratedCertificateView {
    fn from(c: GeneratedCertificate) -> Self {
        Self {
            certificate_pem: certificate::certificate_pem(&c.certificate_der),
            download_url: format!("/api/v1/certificates/{}/certificate.cer", c.id),
            id: c.id,
            thumbprint_s256: c.thumbprint_s256,
            not_before: c.not_before,
            not_after: c.not_after,
            created_at: c.created_at,
        }
    }
}

/// A `.cer` file: the certificate, DER, as an attachment.
pub(crate) fn cer_file(der: Vec<u8>, filename: &str) -> Response {
    let mut response = (StatusCode::OK, der).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/pkix-cert"),
    );
    if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{filename}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    response
}

/// Generate an RSA key pair and a self-signed certificate for it (owner or admin): the
/// certificate comes back to be registered on the app in Entra; the key stays sealed here
/// until a connection uses it.
#[utoipa::path(post, path = "/api/v1/certificates", tag = "certificates", security(("api_key" = [])),
    request_body(content = Option<GenerateCertificate>, description = "Optional; `{}` or no body for the defaults"),
    responses((status = 201, description = "Generated; the public certificate", body = GeneratedCertificateView),
        (status = 403, description = "Not an unlimited owner or admin key", body = Problem, content_type = PROBLEM),
        (status = 422, description = "Invalid common name", body = Problem, content_type = PROBLEM)))]
pub async fn generate_certificate(
    caller: Caller,
    body: Option<ApiJson<GenerateCertificate>>,
) -> Result<(StatusCode, Json<GeneratedCertificateView>), ApiError> {
    let scope = caller.scope();
    scope.may_manage_organizations()?;
    let requested = body.map(|b| b.0).unwrap_or_default();
    let common_name = match requested.common_name.as_deref().map(str::trim) {
        None => DEFAULT_COMMON_NAME.to_owned(),
        Some(name)
            if !name.is_empty()
                && name.chars().count() <= MAX_COMMON_NAME
                && !name.chars().any(char::is_control) =>
        {
            name.to_owned()
        }
        Some(_) => {
            return Err(ApiError::validation(vec![FieldError::new(
                "common_name",
                format!("must be 1–{MAX_COMMON_NAME} characters without control characters"),
            )]));
        }
    };
    // Key generation is CPU work of a few hundred milliseconds: off the async workers,
    // and one at a time in this process, so no MSP's burst takes the cores from the
    // others (it cannot be cancelled once started). A request waits its turn for a few
    // seconds; only a sustained burst is refused.
    let Ok(Ok(_generating)) =
        tokio::time::timeout(KEY_GENERATION_WAIT, KEY_GENERATION.acquire()).await
    else {
        return Err(ApiError::Described {
            problem: Box::new(Problem::new(
                ErrorCode::RateLimited,
                StatusCode::TOO_MANY_REQUESTS,
                "Another key pair is being generated; retry in a second.",
            )),
            retry_after_secs: Some(1),
        });
    };
    let now = chrono::Utc::now();
    let generated = tokio::task::spawn_blocking(move || certificate::generate(&common_name, now))
        .await
        .map_err(ApiError::internal)?
        .map_err(|e| crate::routes::credential_input::certificate_problem(&e))?;
    let stored = scope.store_generated_certificate(&generated).await?;
    tracing::info!(certificate_id = %stored.id, thumbprint = %stored.thumbprint_s256, "certificate generated");
    Ok((StatusCode::CREATED, Json(stored.into())))
}

/// Key pairs generated at once in this process.
static KEY_GENERATION: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(1);
/// How long a request waits for its turn to generate before it is answered 429.
const KEY_GENERATION_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// A generated certificate that no connection has used yet.
#[utoipa::path(get, path = "/api/v1/certificates/{id}", tag = "certificates", security(("api_key" = [])),
    params(("id" = Uuid, Path, description = "The generated certificate's id")),
    responses((status = 200, description = "The certificate", body = GeneratedCertificateView),
        (status = 403, description = "Not an unlimited owner or admin key", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such unused certificate for this MSP", body = Problem, content_type = PROBLEM)))]
pub async fn get_certificate(
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<GeneratedCertificateView>, ApiError> {
    Ok(Json(caller.scope().generated_certificate(id).await?.into()))
}

/// Destroy a generated key pair that no connection has used.
#[utoipa::path(delete, path = "/api/v1/certificates/{id}", tag = "certificates", security(("api_key" = [])),
    params(("id" = Uuid, Path, description = "The generated certificate's id")),
    responses((status = 204, description = "Destroyed"),
        (status = 403, description = "Not an unlimited owner or admin key", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such unused certificate for this MSP", body = Problem, content_type = PROBLEM)))]
pub async fn delete_certificate(
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<StatusCode, ApiError> {
    caller.scope().delete_generated_certificate(id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A generated certificate, DER-encoded (a `.cer` file, for Entra's "Upload certificate").
#[utoipa::path(get, path = "/api/v1/certificates/{id}/certificate.cer", tag = "certificates", security(("api_key" = [])),
    params(("id" = Uuid, Path, description = "The generated certificate's id")),
    responses((status = 200, description = "The certificate, DER", content_type = "application/pkix-cert", body = Vec<u8>),
        (status = 403, description = "Not an unlimited owner or admin key", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such unused certificate for this MSP", body = Problem, content_type = PROBLEM)))]
pub async fn download_generated_certificate(
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Response, ApiError> {
    let certificate = caller.scope().generated_certificate(id).await?;
    Ok(cer_file(
        certificate.certificate_der,
        &format!("tenantry-{id}.cer"),
    ))
}
