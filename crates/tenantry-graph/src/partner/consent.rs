//! The per-customer admin-consent link (graph-facts-next §1.4, the v1 `adminconsent` form:
//! no `scope`, the admin consents to everything the app declares in
//! `requiredResourceAccess`). Entra then redirects to `redirect_uri` with `tenant`, `state`
//! and `admin_consent=True`, which prove nothing by themselves: a token in that tenant
//! does (§1.6).

use uuid::Uuid;

use crate::config::GraphConfig;

/// `{authority}/{customer}/adminconsent?client_id=…&redirect_uri=…&state=…`, every value
/// form-url-encoded (`redirect_uri` "must be URL-encoded"; a space is `+`).
pub fn admin_consent_url(
    config: &GraphConfig,
    customer_tenant: Uuid,
    client_id: Uuid,
    redirect_uri: &str,
    state: &str,
) -> String {
    let client_id = client_id.to_string();
    format!(
        "{}/{customer_tenant}/adminconsent?{}",
        config.authority_url,
        form_query(&[
            ("client_id", &client_id),
            ("redirect_uri", redirect_uri),
            ("state", state)
        ])
    )
}

/// `application/x-www-form-urlencoded` pairs, through the `url` crate's serializer
/// (re-exported by reqwest). The base is a placeholder: only the query it builds is kept,
/// so the authority stays exactly as configured.
fn form_query(pairs: &[(&str, &str)]) -> String {
    let Ok(mut url) = reqwest::Url::parse("https://query.invalid/") else {
        return String::new();
    };
    url.query_pairs_mut().extend_pairs(pairs);
    url.query().unwrap_or_default().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_is_form_encoded() {
        let config = GraphConfig::new(
            "https://login.microsoftonline.com/",
            "https://graph.microsoft.com",
        );
        let customer = Uuid::parse_str("52eaad04-13a2-4a2f-9ce8-93a294fadf36").expect("uuid");
        let client = Uuid::parse_str("535fb089-9ff3-47b6-9bfb-4f1264799865").expect("uuid");
        let redirect = "https://app.example/consent/callback?org=7&x=a b";
        let state = "k+v=w/1 2";
        let url = admin_consent_url(&config, customer, client, redirect, state);
        assert_eq!(
            url,
            "https://login.microsoftonline.com/52eaad04-13a2-4a2f-9ce8-93a294fadf36/adminconsent\
             ?client_id=535fb089-9ff3-47b6-9bfb-4f1264799865\
             &redirect_uri=https%3A%2F%2Fapp.example%2Fconsent%2Fcallback%3Forg%3D7%26x%3Da+b\
             &state=k%2Bv%3Dw%2F1+2"
        );
        let parsed = reqwest::Url::parse(&url).expect("a URL");
        let pairs: Vec<(String, String)> = parsed
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        assert_eq!(
            pairs,
            [
                ("client_id".to_owned(), client.to_string()),
                ("redirect_uri".to_owned(), redirect.to_owned()),
                ("state".to_owned(), state.to_owned()),
            ]
        );
    }
}
