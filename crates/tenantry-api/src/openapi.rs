//! The OpenAPI 3.1 document. Paths come from the `#[utoipa::path]` attribute of each
//! handler, collected by `utoipa-axum` as the router is built, so a route cannot be
//! served without being documented. This module adds the document's header and the bearer
//! security scheme, and renders the small HTML docs page.

use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{HttpMethod, OpenApi as OpenApiDoc};
use utoipa::{Modify, OpenApi};

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
