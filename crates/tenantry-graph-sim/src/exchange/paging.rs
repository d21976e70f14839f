//! Paging of the admin API (graph-facts-next §2.7): `Prefer: odata.maxpagesize=N` (at most
//! 1000), `ResultSize` (default 1000, `Unlimited` or a number) and an `@odata.nextLink`
//! whose `$skiptoken` is bound to the request body, so the client must POST the same
//! `CmdletInput` to it.

use axum::http::HeaderMap;
use base64::Engine;
use serde_json::Value;

use super::errors::ExoError;
use super::objects::Params;
use crate::model::ids::stable_hash;

/// Page size without a `Prefer` header. UNVERIFIED: the reference only shows clients
/// asking for 1000 (CIPP) or 100 (ExoHelper); the simulator answers 1000.
pub const DEFAULT_PAGE_SIZE: usize = 1000;
pub const MAX_PAGE_SIZE: usize = 1000;
/// `Get-Mailbox` "ResultSize … The default value is 1000".
pub const DEFAULT_RESULT_SIZE: usize = 1000;

pub struct PageSize {
    pub size: usize,
    /// What to answer in `Preference-Applied`, when the client asked.
    pub applied: Option<usize>,
}

/// `Prefer: odata.maxpagesize=N` (also with spaces around `=` and other preferences);
/// above 1000 is lowered to 1000 (UNVERIFIED: lowered rather than refused).
pub fn page_size(headers: &HeaderMap) -> Result<PageSize, ExoError> {
    for value in headers.get_all("prefer") {
        let Ok(value) = value.to_str() else { continue };
        for preference in value.split([';', ',']) {
            let Some((key, size)) = preference.split_once('=') else {
                continue;
            };
            if key.trim().eq_ignore_ascii_case("odata.maxpagesize") {
                let size: usize = size.trim().parse().map_err(|_| {
                    ExoError::invalid(format!("Invalid odata.maxpagesize '{}'.", size.trim()))
                })?;
                let size = size.clamp(1, MAX_PAGE_SIZE);
                return Ok(PageSize {
                    size,
                    applied: Some(size),
                });
            }
        }
    }
    Ok(PageSize {
        size: DEFAULT_PAGE_SIZE,
        applied: None,
    })
}

/// `ResultSize`: `None` for `Unlimited`.
pub fn result_size(params: &Params) -> Result<Option<usize>, ExoError> {
    match params.get("ResultSize") {
        None | Some(Value::Null) => Ok(Some(DEFAULT_RESULT_SIZE)),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("unlimited") => Ok(None),
        Some(Value::String(s)) => s.trim().parse().map(Some).map_err(|_| bad_result_size(s)),
        Some(Value::Number(n)) => n
            .as_u64()
            .and_then(|n| usize::try_from(n).ok())
            .map(Some)
            .ok_or_else(|| bad_result_size(&n.to_string())),
        Some(other) => Err(bad_result_size(&other.to_string())),
    }
}

fn bad_result_size(value: &str) -> ExoError {
    ExoError::invalid(format!(
        "Cannot process argument transformation on parameter 'ResultSize'. Cannot convert value \"{value}\" to type \"Microsoft.Exchange.Data.Unlimited`1[System.UInt32]\"."
    ))
}

/// Binds a skip token to the cmdlet and its parameters.
pub fn fingerprint(name: &str, params: &Params) -> u64 {
    stable_hash(&[
        name.to_ascii_lowercase().as_bytes(),
        params.canonical().as_bytes(),
    ])
}

pub fn encode(skip: usize, fingerprint: u64) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{skip}:{fingerprint:x}"))
}

/// The offset of a skip token; 400 when it is not one of ours or was minted for another
/// body (UNVERIFIED error; the reference only says the body must be repeated).
pub fn decode(token: &str, fingerprint: u64) -> Result<usize, ExoError> {
    let invalid = || {
        ExoError::invalid(
            "The $skiptoken is invalid or does not belong to this request; POST the same CmdletInput body to the @odata.nextLink.",
        )
    };
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    let (skip, print) = text.split_once(':').ok_or_else(invalid)?;
    if u64::from_str_radix(print, 16).ok() != Some(fingerprint) {
        return Err(invalid());
    }
    skip.parse().map_err(|_| invalid())
}

pub struct Page {
    pub rows: Vec<Value>,
    /// The offset of the next page, when there is one.
    pub next: Option<usize>,
    /// `ResultSize` cut the listing short (a warning says so).
    pub truncated: bool,
}

/// The page at `skip` of `rows` cut to `result_size` (only listings are cut).
pub fn page(
    mut rows: Vec<Value>,
    skip: usize,
    size: usize,
    result_size: Option<usize>,
    listing: bool,
) -> Page {
    let mut truncated = false;
    if listing
        && let Some(limit) = result_size
        && rows.len() > limit
    {
        rows.truncate(limit);
        truncated = true;
    }
    let total = rows.len();
    let end = skip.saturating_add(size).min(total);
    let page: Vec<Value> = rows.drain(skip.min(total)..end).collect();
    Page {
        rows: page,
        next: (end < total).then_some(end),
        truncated: truncated && end >= total,
    }
}
