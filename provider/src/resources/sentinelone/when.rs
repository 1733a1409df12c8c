//! Dates and durations for token expiry: RFC 3339 instants as seconds since the epoch, and
//! durations such as `365d`, `720h`, `30d12h`. No calendar crate needed for UTC.

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn num(s: &str) -> Option<i64> {
    (!s.is_empty() && s.chars().all(|c| c.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

/// Parses `2027-01-31` (midnight UTC) or an RFC 3339 date-time with `Z` or an offset.
pub fn parse(s: &str) -> Option<i64> {
    let s = s.trim();
    let (date, rest) = match s.find(['T', 't', ' ']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let mut parts = date.split('-');
    let (y, m, d) = (
        num(parts.next()?)?,
        num(parts.next()?)?,
        num(parts.next()?)?,
    );
    if parts.next().is_some() || !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let days = days_from_civil(y, m, d);
    if civil_from_days(days) != (y, m, d) {
        return None; // 2027-02-30
    }
    let Some(rest) = rest else {
        return Some(days * 86_400);
    };
    let (time, offset) = if let Some(t) = rest.strip_suffix(['Z', 'z']) {
        (t, 0)
    } else {
        let i = rest.rfind(['+', '-'])?;
        let (t, off) = (&rest[..i], &rest[i..]);
        let sign = if off.starts_with('-') { -1 } else { 1 };
        let (oh, om) = off[1..].split_once(':')?;
        (t, sign * (num(oh)? * 3600 + num(om)? * 60))
    };
    let time = time.split('.').next()?;
    let mut hms = time.split(':');
    let (h, mi, se) = (
        num(hms.next()?)?,
        num(hms.next()?)?,
        num(hms.next().unwrap_or("0"))?,
    );
    if h > 23 || mi > 59 || se > 60 {
        return None;
    }
    Some(days * 86_400 + h * 3600 + mi * 60 + se - offset)
}

/// `2027-01-31T00:00:00Z`.
pub fn format(secs: i64) -> String {
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// A duration (`365d`, `2160h`, `90m`) in seconds.
pub fn parse_duration(s: &str) -> Option<i64> {
    crate::resources::support::common::parse_duration(s)
        .and_then(|d| i64::try_from(d.as_secs()).ok())
}

/// Now, in seconds since the epoch. Only Create, Update and Read call this; never Plan.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip() {
        assert_eq!(parse("1970-01-01"), Some(0));
        assert_eq!(parse("2027-01-31T00:00:00Z"), parse("2027-01-31"));
        let t = parse("2026-11-23T15:45:12.123456Z").unwrap();
        assert_eq!(format(t), "2026-11-23T15:45:12Z");
        assert_eq!(
            parse("2026-11-23T17:45:12+02:00"),
            parse("2026-11-23T15:45:12Z")
        );
        assert_eq!(
            parse("2024-02-29"),
            Some(days_from_civil(2024, 2, 29) * 86_400)
        );
        assert_eq!(parse("2027-02-30"), None);
        assert_eq!(parse("tomorrow"), None);
        assert_eq!(parse("2027-13-01"), None);
        for days in [-1000, 0, 19_000, 30_000, 100_000] {
            let s = days * 86_400 + 3723;
            assert_eq!(parse(&format(s)), Some(s));
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("365d"), Some(365 * 86_400));
        assert_eq!(parse_duration("30d12h"), Some(30 * 86_400 + 12 * 3600));
        assert_eq!(parse_duration("90m"), Some(5400));
        assert_eq!(parse_duration("365"), None);
        assert_eq!(parse_duration("1y"), None);
        assert_eq!(parse_duration("0d"), None);
    }
}
