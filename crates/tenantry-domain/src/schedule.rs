//! When an organization's next discovery scan is due: its cron expression (5 fields, as
//! in crontab, evaluated in UTC) or, by default, every 24 hours with up to an hour of
//! jitter either way, so hundreds of tenants added together do not scan together.
//!
//! A schedule is refused when it would scan more often than [`MIN_INTERVAL`] (a full scan
//! of a large tenant takes minutes and costs Graph quota) or when it never fires
//! (`0 0 31 2 *`).

use std::str::FromStr;

use chrono::{DateTime, Duration, Utc};
use croner::Cron;

/// The shortest time allowed between two scheduled scans.
pub const MIN_INTERVAL: Duration = Duration::hours(1);

/// How many consecutive occurrences are compared for the minimum interval: enough to
/// cover every pair of adjacent fire times (within a day and across midnight) of a
/// 5-field expression at least once.
const OCCURRENCES_CHECKED: usize = 400;

#[derive(Debug, thiserror::Error)]
pub enum InvalidSchedule {
    #[error("not a cron expression (5 fields: minute hour day-of-month month day-of-week): {0}")]
    Syntax(String),
    #[error("never fires (no date matches it)")]
    NeverFires,
    #[error(
        "fires {gap_minutes} minutes apart at {at}; scheduled scans must be at least an hour apart (e.g. `0 * * * *` or `30 2 * * *`)"
    )]
    TooFrequent { gap_minutes: i64, at: String },
}

/// Checks a schedule and returns its next occurrence after `now`.
pub fn parse(schedule: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, InvalidSchedule> {
    let cron = checked(schedule)?;
    let next = cron
        .find_next_occurrence(&now, false)
        .map_err(|_| InvalidSchedule::NeverFires)?;
    let mut previous = next;
    for _ in 0..OCCURRENCES_CHECKED {
        let Ok(following) = cron.find_next_occurrence(&previous, false) else {
            break;
        };
        let gap = following - previous;
        if gap < MIN_INTERVAL {
            return Err(InvalidSchedule::TooFrequent {
                gap_minutes: gap.num_minutes(),
                at: previous.format("%H:%M UTC").to_string(),
            });
        }
        previous = following;
    }
    Ok(next)
}

fn checked(schedule: &str) -> Result<Cron, InvalidSchedule> {
    let fields = schedule.split_whitespace().count();
    if fields != 5 {
        return Err(InvalidSchedule::Syntax(format!("{fields} fields")));
    }
    Cron::from_str(schedule).map_err(|e| InvalidSchedule::Syntax(e.to_string()))
}

/// The next scan after `now` for a stored schedule (`None`: the default).
pub fn next_scan(schedule: Option<&str>, now: DateTime<Utc>) -> DateTime<Utc> {
    let stored = schedule.and_then(|s| checked(s).ok());
    match stored.and_then(|cron| cron.find_next_occurrence(&now, false).ok()) {
        Some(next) => next,
        // A stored schedule was checked when it was set; should it ever fail to parse,
        // the default keeps the organization scanned.
        None => now + Duration::hours(23) + Duration::seconds(fastrand::i64(0..=7200)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .expect("time")
            .with_timezone(&Utc)
    }

    #[test]
    fn cron_expressions_give_their_next_occurrence() {
        let now = at("2026-11-22T10:07:00Z");
        let next = parse("30 2 * * *", now).expect("valid");
        assert_eq!(next.to_rfc3339(), "2026-11-23T02:30:00+00:00");
        assert_eq!(
            parse("0 * * * *", now).expect("hourly").to_rfc3339(),
            "2026-11-22T11:00:00+00:00"
        );
        assert!(parse("* * * * * *", now).is_err(), "six fields are refused");
        assert!(parse("61 * * * *", now).is_err());
        assert!(parse("hourly", now).is_err());
    }

    #[test]
    fn schedules_more_often_than_hourly_are_refused() {
        let now = at("2026-11-22T10:07:00Z");
        for schedule in [
            "* * * * *",
            "*/30 * * * *",
            "0,59 3 * * *",
            // 23:50 then 00:10 the next day, only on Mondays into Tuesdays.
            "10,50 0,23 * * 1,2",
        ] {
            assert!(
                matches!(
                    parse(schedule, now),
                    Err(InvalidSchedule::TooFrequent { .. })
                ),
                "{schedule} is refused"
            );
        }
        assert!(parse("0 */2 * * *", now).is_ok());
        assert!(parse("0 3 * * 1-5", now).is_ok());
    }

    #[test]
    fn schedules_that_never_fire_are_refused() {
        let now = at("2026-11-22T10:07:00Z");
        assert!(matches!(
            parse("0 0 31 2 *", now),
            Err(InvalidSchedule::NeverFires)
        ));
        assert!(parse("0 0 29 2 *", now).is_ok(), "leap days do come");
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
