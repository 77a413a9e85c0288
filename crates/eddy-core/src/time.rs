//! Timestamps as AWS writes them, without a date library: the conversions between days since
//! the epoch and civil dates are Howard Hinnant's `civil_from_days` and `days_from_civil`.

/// `2026-11-25T10:00:00.000Z` for milliseconds since the Unix epoch.
pub fn iso8601_millis(ms: i64) -> String {
    let (days, ms_of_day) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
    let (year, month, day) = civil_from_days(days);
    let secs = ms_of_day / 1000;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        ms_of_day % 1000
    )
}

/// `20261125T100000Z`, the `X-Amz-Date` form, for milliseconds since the Unix epoch.
pub fn amz_date(ms: i64) -> String {
    let iso = iso8601_millis(ms);
    // 2026-11-25T10:00:00.000Z → 20261125T100000Z
    format!("{}Z", iso[..19].replace(['-', ':'], ""))
}

/// Milliseconds since the Unix epoch for an `X-Amz-Date` value; `None` unless it has exactly
/// the form `YYYYMMDDTHHMMSSZ` with a real date and time.
pub fn parse_amz_date(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let digits = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = text.get(range)?;
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    let (year, month, day) = (digits(0..4)?, digits(4..6)?, digits(6..8)?);
    let (hour, minute, second) = (digits(9..11)?, digits(11..13)?, digits(13..15)?);
    if !(1..=12).contains(&month) || day < 1 || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let days = days_from_civil(year, month as u32, day as u32);
    // A day past the month's end shows up as a different date on the way back.
    if civil_from_days(days) != (year, month as u32, day as u32) {
        return None;
    }
    Some(((days * 24 + hour) * 60 + minute) * 60_000 + second * 1000)
}

/// Milliseconds since the Unix epoch for `YYYY-MM-DDTHH:MM:SS[.fff]Z`, the form of an S3 POST
/// policy's expiration; `None` for anything else.
pub fn parse_iso8601(text: &str) -> Option<i64> {
    let (date, time) = text.strip_suffix('Z')?.split_once('T')?;
    let (clock, millis) = match time.split_once('.') {
        Some((clock, fraction)) => {
            let digits = fraction.get(..fraction.len().min(3))?;
            if fraction.is_empty() || !fraction.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            (clock, format!("{digits:0<3}").parse::<i64>().ok()?)
        }
        None => (time, 0),
    };
    let compact = format!("{}T{}Z", date.replace('-', ""), clock.replace(':', ""));
    (date.len() == 10 && clock.len() == 8)
        .then(|| parse_amz_date(&compact))
        .flatten()
        .map(|ms| ms + millis)
}

/// Days since the Unix epoch for a civil date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(iso8601_millis(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso8601_millis(123), "1970-01-01T00:00:00.123Z");
        assert_eq!(
            iso8601_millis(1_795_600_800_000),
            "2026-11-25T10:00:00.000Z"
        );
        assert_eq!(iso8601_millis(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(
            iso8601_millis(4_107_542_399_999),
            "2100-02-28T23:59:59.999Z"
        );
        assert_eq!(iso8601_millis(-1), "1969-12-31T23:59:59.999Z");
    }

    #[test]
    fn iso_dates_parse_as_policies_write_them() {
        assert_eq!(
            parse_iso8601("2026-11-25T10:00:00Z"),
            Some(1_795_600_800_000)
        );
        assert_eq!(
            parse_iso8601("2026-11-25T10:00:00.123Z"),
            Some(1_795_600_800_123)
        );
        assert_eq!(
            parse_iso8601("2026-11-25T10:00:00.5Z"),
            Some(1_795_600_800_500)
        );
        for bad in [
            "2026-11-25 10:00:00Z",
            "2026-11-25T10:00:00",
            "2026-13-25T10:00:00Z",
            "x",
            "2026-11-25T10:00:00.Z",
        ] {
            assert_eq!(parse_iso8601(bad), None, "{bad}");
        }
    }

    #[test]
    fn amz_dates_round_trip() {
        for ms in [0, 951_782_400_000, 1_795_600_800_000, 4_107_542_399_000] {
            assert_eq!(parse_amz_date(&amz_date(ms)), Some(ms), "{}", amz_date(ms));
        }
        assert_eq!(amz_date(1_795_600_800_123), "20261125T100000Z");
        for bad in [
            "",
            "20261125T100000",
            "20261125 100000Z",
            "20260230T100000Z",
            "20261301T000000Z",
            "20261125T250000Z",
            "2026112+T100000Z",
            "20261125T10000ZZ",
        ] {
            assert_eq!(parse_amz_date(bad), None, "{bad}");
        }
    }
}
