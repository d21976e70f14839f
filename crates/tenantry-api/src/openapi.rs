//! The OpenAPI 3.1 document. Paths come from the `#[utoipa::path]` attribute of each
//! handler, collected by `utoipa-axum` as the router is built, so a route cannot be
//! served without being documented. This module adds the document's header and the bearer
//! security scheme, and renders the small HTML docs page.

use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{
    ContentBuilder, HttpMethod, ObjectBuilder, OpenApi as OpenApiDoc, Ref, RefOr, ResponseBuilder,
    Type,
};
use utoipa::{Modify, OpenApi};

use crate::finish::{MAX_HEADER_BYTES, MAX_HEADERS};
use crate::problem::{DATABASE_RETRY_AFTER_SECS, PROBLEM_CONTENT_TYPE};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Tenantry API",
        description = "Multi-tenant Microsoft 365 management for MSPs. Authenticate with `Authorization: Bearer <api key>`. Errors are RFC 9457 `application/problem+json` documents with a stable `code`.",
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "auth", description = "Who am I"),
        (name = "api-keys", description = "API keys of the caller's MSP"),
        (name = "organizations", description = "Customers' Microsoft 365 tenants"),
        (name = "certificates", description = "Key pairs Tenantry generates for certificate credentials"),
        (name = "operations", description = "Health, readiness, metrics and this document"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut OpenApiDoc) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// Adds the answers that the shared layers and extractors give, to every operation they
/// apply to, so that no annotation has to repeat them (an annotation's own description of
/// a status wins):
/// - every operation: 431 (too many or too large headers, refused before routing);
/// - every operation that reads the database (all but the probes, `/metrics` and the
///   documents; `/readyz` has its own 503): 503 `DATABASE_UNAVAILABLE` with `Retry-After`;
/// - every secured operation: 401, and 429 with `Retry-After` (failed authentications);
/// - with path parameters: 400 (not a UUID), and 404 on secured ones;
/// - with an `organization` filter: 404 when the key cannot see that organization, the
///   same whether it is another MSP's or does not exist (so a list reveals nothing);
/// - with query parameters: 400 (unknown or unreadable parameter) and 422 (a value out of
///   range, e.g. `limit`, or holding NUL);
/// - with a body: 413, and on `/api/v1` 400 (not JSON), 415 (not `application/json`) and
///   422 (JSON of the wrong shape).
pub fn add_common_responses(doc: &mut OpenApiDoc) {
    for (path, item) in doc.paths.paths.iter_mut() {
        let operations = [
            &mut item.get,
            &mut item.post,
            &mut item.put,
            &mut item.patch,
            &mut item.delete,
        ];
        for operation in operations.into_iter().flatten() {
            add_to(path, operation);
        }
    }
}

fn add_to(path: &str, operation: &mut Operation) {
    let secured = operation.security.as_ref().is_some_and(|s| !s.is_empty());
    let parameters = operation.parameters.as_deref().unwrap_or_default();
    let has = |place: ParameterIn| {
        parameters.iter().any(|p| match p {
            RefOr::T(p) => p.parameter_in == place,
            RefOr::Ref(_) => false,
        })
    };
    let (in_path, in_query) = (has(ParameterIn::Path), has(ParameterIn::Query));
    let organization_filter = parameters.iter().any(|p| match p {
        RefOr::T(p) => p.parameter_in == ParameterIn::Query && p.name == "organization",
        RefOr::Ref(_) => false,
    });
    let has_body = operation.request_body.is_some();
    let api = path.starts_with("/api/v1/");
    let uses_database = !matches!(
        path,
        "/healthz" | "/readyz" | "/metrics" | "/api/openapi.json" | "/api/docs"
    );
    let mut add = |status: u16, description: &str, retry_after: bool| {
        match operation.responses.responses.get_mut(&status.to_string()) {
            None => {
                operation.responses.responses.insert(
                    status.to_string(),
                    RefOr::T(problem_response(description, retry_after)),
                );
            }
            // Documented by the route for its own reasons (e.g. UPSTREAM_UNAVAILABLE):
            // the layer's reason is added to it.
            Some(RefOr::T(own)) if retry_after => {
                if !own.description.contains(description) {
                    own.description = format!("{}; or {description}", own.description);
                }
                own.headers
                    .entry("Retry-After".to_owned())
                    .or_insert_with(|| RefOr::T(retry_after_header()));
            }
            Some(_) => {}
        }
    };
    if in_path || in_query {
        add(
            400,
            "INVALID_REQUEST: a path id that is not a UUID, or a query parameter that is unknown or cannot be read",
            false,
        );
    }
    if has_body && api {
        add(400, "INVALID_REQUEST: the body is not valid JSON", false);
    }
    if secured {
        add(
            401,
            "UNAUTHENTICATED: no API key, or an unknown or revoked one (`WWW-Authenticate: Bearer`)",
            false,
        );
    }
    if secured && in_path {
        add(
            404,
            "NOT_FOUND: no such object, or it is not visible to this API key",
            false,
        );
    }
    if secured && organization_filter {
        add(
            404,
            "NOT_FOUND: `organization` is not one of the organizations this key may see (an unknown id and another MSP's answer alike)",
            false,
        );
    }
    if has_body {
        add(
            413,
            "PAYLOAD_TOO_LARGE: the body is larger than the server accepts",
            false,
        );
    }
    if has_body && api {
        add(
            415,
            "UNSUPPORTED_MEDIA_TYPE: send the body as `application/json` (UTF-8)",
            false,
        );
    }
    if in_query || (has_body && api) {
        add(
            422,
            "INVALID_REQUEST: a field or query value is invalid (e.g. `limit` outside 1–100); see `errors`",
            false,
        );
    }
    if secured {
        add(
            429,
            "RATE_LIMITED: too many failed authentications from this address; see `Retry-After`",
            true,
        );
    }
    add(
        431,
        &format!(
            "REQUEST_HEADERS_TOO_LARGE: more than {MAX_HEADERS} header fields or {} KiB of headers",
            MAX_HEADER_BYTES / 1024
        ),
        false,
    );
    if uses_database {
        add(
            503,
            &format!(
                "DATABASE_UNAVAILABLE: the database is out of reach; retry after `Retry-After` (about {DATABASE_RETRY_AFTER_SECS} s)"
            ),
            true,
        );
    }
}

fn problem_response(description: &str, retry_after: bool) -> utoipa::openapi::Response {
    let mut response = ResponseBuilder::new().description(description).content(
        PROBLEM_CONTENT_TYPE,
        ContentBuilder::new()
            .schema(Some(Ref::from_schema_name("Problem")))
            .build(),
    );
    if retry_after {
        response = response.header("Retry-After", retry_after_header());
    }
    response.build()
}

fn retry_after_header() -> utoipa::openapi::Header {
    HeaderBuilder::new()
        .schema(Some(
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(0)),
        ))
        .description(Some("Seconds to wait before retrying"))
        .build()
}

/// The rendered document and docs page, built once at start-up.
pub struct ApiDocs {
    pub json: String,
    pub html: String,
}

impl ApiDocs {
    pub fn new(doc: &OpenApiDoc) -> Result<Self, serde_json::Error> {
        Ok(Self {
            json: doc.to_pretty_json()?,
            html: render_html(doc),
        })
    }
}

const METHODS: [(HttpMethod, &str); 5] = [
    (HttpMethod::Get, "GET"),
    (HttpMethod::Post, "POST"),
    (HttpMethod::Put, "PUT"),
    (HttpMethod::Patch, "PATCH"),
    (HttpMethod::Delete, "DELETE"),
];

/// A plain, dependency-free page listing every operation; the full schema is one click
/// away in `/api/openapi.json` (load it into any OpenAPI viewer).
fn render_html(doc: &OpenApiDoc) -> String {
    let mut rows = String::new();
    for (path, item) in &doc.paths.paths {
        for (method, label) in &METHODS {
            let operation = match method {
                HttpMethod::Get => &item.get,
                HttpMethod::Post => &item.post,
                HttpMethod::Put => &item.put,
                HttpMethod::Patch => &item.patch,
                HttpMethod::Delete => &item.delete,
                _ => &None,
            };
            if let Some(operation) = operation {
                rows.push_str(&format!(
                    "<tr><td><code>{label}</code></td><td><code>{}</code></td><td>{}</td></tr>\n",
                    escape(path),
                    escape(operation.summary.as_deref().unwrap_or(""))
                ));
            }
        }
    }
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title>\
         <style>body{{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}}\
         td{{padding:.3rem .8rem;border-bottom:1px solid #ddd}}</style></head><body>\
         <h1>{title} {version}</h1><p>{description}</p>\
         <p>Machine-readable: <a href=\"/api/openapi.json\">/api/openapi.json</a> (OpenAPI 3.1).</p>\
         <table><thead><tr><th>Method</th><th>Path</th><th>What it does</th></tr></thead><tbody>\n{rows}</tbody></table>\
         </body></html>\n",
        title = escape(&doc.info.title),
        version = escape(&doc.info.version),
        description = escape(doc.info.description.as_deref().unwrap_or("")),
    )
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
