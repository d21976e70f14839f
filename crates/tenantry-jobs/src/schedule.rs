//! When an organization's next discovery scan is due: its cron expression (5 fields, as
//! in crontab, evaluated in UTC) or, by default, every 24 hours with up to an hour of
//! jitter either way, so hundreds of tenants added together do not scan together.

use std::str::FromStr;

use chrono::{DateTime, Duration, Utc};
use croner::Cron;

#[derive(Debug, thiserror::Error)]
#[error("not a cron expression (5 fields: minute hour day-of-month month day-of-week): {0}")]
pub struct InvalidSchedule(String);

/// Checks a schedule and returns its next occurrence after `now`.
pub fn parse(schedule: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, InvalidSchedule> {
    let fields = schedule.split_whitespace().count();
    if fields != 5 {
        return Err(InvalidSchedule(format!("{fields} fields")));
    }
    let cron = Cron::from_str(schedule).map_err(|e| InvalidSchedule(e.to_string()))?;
    cron.find_next_occurrence(&now, false)
        .map_err(|e| InvalidSchedule(e.to_string()))
}

/// The next scan after `now` for a stored schedule (`None`: the default).
pub fn next_scan(schedule: Option<&str>, now: DateTime<Utc>) -> DateTime<Utc> {
    match schedule.map(|s| parse(s, now)) {
        Some(Ok(next)) => next,
        // A stored schedule was checked when it was set; should it ever fail to parse,
        // the default keeps the organization scanned.
        Some(Err(_)) | None => {
            now + Duration::hours(23) + Duration::seconds(fastrand::i64(0..=7200))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cron_expressions_give_their_next_occurrence() {
        let now = DateTime::parse_from_rfc3339("2026-11-22T10:07:00Z")
            .expect("time")
            .with_timezone(&Utc);
        let next = parse("30 2 * * *", now).expect("valid");
        assert_eq!(next.to_rfc3339(), "2026-11-23T02:30:00+00:00");
        assert!(parse("* * * * * *", now).is_err(), "six fields are refused");
        assert!(parse("61 * * * *", now).is_err());
        assert!(parse("hourly", now).is_err());
    }

    #[test]
    fn the_default_is_a_day_give_or_take_an_hour() {
        let now = Utc::now();
        for _ in 0..100 {
            let next = next_scan(None, now);
            assert!(next >= now + Duration::hours(23) && next <= now + Duration::hours(25));
        }
    }
}
