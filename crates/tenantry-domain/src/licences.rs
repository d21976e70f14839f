//! A subscribed SKU as an MSP reads it: what is paid for, what is assigned, what is free
//! (graph-facts-next §3.2), and the product's name people know it by.

use serde::Serialize;
use serde_json::Value;

/// The seats of one subscribed SKU.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Seats {
    /// `prepaidUnits.enabled`: paid for and usable.
    pub purchased: i64,
    /// `consumedUnits`: assigned to users.
    pub assigned: i64,
    /// Purchased but not assigned (never below zero).
    pub available: i64,
    /// More assigned than enabled, as happens while units are in warning or suspended
    /// (UNVERIFIED, inferred in graph-facts-next §3.2).
    pub over_assigned: bool,
    /// `prepaidUnits.warning`: expired, in their grace period.
    pub warning: i64,
    /// `prepaidUnits.suspended`: cancelled, not assignable, still reactivable.
    pub suspended: i64,
    /// `prepaidUnits.lockedOut` (absent from older answers: 0).
    pub locked_out: i64,
    /// Share of the purchased seats nobody uses, in percent (0 when none are purchased).
    pub unused_percent: i64,
}

/// The seats of a `GET /subscribedSkus` row.
pub fn seats(sku: &Value) -> Seats {
    let units = |v: &Value| v.as_i64().unwrap_or(0).max(0);
    let prepaid = &sku["prepaidUnits"];
    let purchased = units(&prepaid["enabled"]);
    let assigned = units(&sku["consumedUnits"]);
    let available = (purchased - assigned).max(0);
    Seats {
        purchased,
        assigned,
        available,
        over_assigned: assigned > purchased,
        warning: units(&prepaid["warning"]),
        suspended: units(&prepaid["suspended"]),
        locked_out: units(&prepaid["lockedOut"]),
        unused_percent: if purchased == 0 {
            0
        } else {
            available * 100 / purchased
        },
    }
}

/// Product names by `skuPartNumber`, a subset of Microsoft's "Product names and service
/// plan identifiers for licensing" list (learn.microsoft.com, `licensing-service-plan-
/// reference`; its CSV's `Product_Display_Name`). Written down from that page without
/// network access here: the spellings are UNVERIFIED against the current CSV. An unknown
/// part number is shown as it is.
const PRODUCT_NAMES: [(&str, &str); 15] = [
    ("AAD_PREMIUM", "Microsoft Entra ID P1"),
    ("AAD_PREMIUM_P2", "Microsoft Entra ID P2"),
    ("EMS", "Enterprise Mobility + Security E3"),
    ("ENTERPRISEPACK", "Office 365 E3"),
    ("ENTERPRISEPREMIUM", "Office 365 E5"),
    ("EXCHANGEENTERPRISE", "Exchange Online (Plan 2)"),
    ("EXCHANGESTANDARD", "Exchange Online (Plan 1)"),
    ("FLOW_FREE", "Microsoft Power Automate Free"),
    ("O365_BUSINESS_ESSENTIALS", "Microsoft 365 Business Basic"),
    ("O365_BUSINESS_PREMIUM", "Microsoft 365 Business Standard"),
    ("POWER_BI_PRO", "Power BI Pro"),
    ("SPB", "Microsoft 365 Business Premium"),
    ("SPE_E3", "Microsoft 365 E3"),
    ("SPE_E5", "Microsoft 365 E5"),
    ("STANDARDPACK", "Office 365 E1"),
];

/// The product name of a `skuPartNumber`, when Tenantry knows it.
pub fn product_name(part_number: &str) -> Option<&'static str> {
    PRODUCT_NAMES
        .iter()
        .find(|(part, _)| part.eq_ignore_ascii_case(part_number))
        .map(|(_, name)| *name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn seats_are_counted_from_prepaid_and_consumed_units() {
        let sku = json!({"consumedUnits": 14, "prepaidUnits": {"enabled": 25, "lockedOut": 0, "suspended": 0, "warning": 0}});
        let seats = seats(&sku);
        assert_eq!(
            (seats.purchased, seats.assigned, seats.available),
            (25, 14, 11)
        );
        assert_eq!(seats.unused_percent, 44);
        assert!(!seats.over_assigned);
        // Units in their grace period can leave more assigned than enabled.
        let over = super::seats(
            &json!({"consumedUnits": 12, "prepaidUnits": {"enabled": 10, "warning": 5}}),
        );
        assert_eq!(
            (
                over.available,
                over.over_assigned,
                over.warning,
                over.locked_out
            ),
            (0, true, 5, 0)
        );
        assert_eq!(super::seats(&json!({})).unused_percent, 0);
    }

    #[test]
    fn product_names_are_known_by_part_number_only() {
        assert_eq!(product_name("ENTERPRISEPREMIUM"), Some("Office 365 E5"));
        assert_eq!(product_name("spb"), Some("Microsoft 365 Business Premium"));
        assert_eq!(product_name("SOMETHING_NEW"), None);
    }
}
