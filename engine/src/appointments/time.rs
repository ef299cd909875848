//! Local dates and times of the city's clocks, to the minute, and their link to UTC timestamps.
//!
//! Schedules, slot ids and absences are written in the city's local time (`2025-03-03T09:30`);
//! the decision log keeps UTC [`Timestamp`]s. One fixed UTC offset per city links them (Moscow
//! has had no daylight saving time since 2014).

use std::fmt;

use crate::log::Timestamp;

pub const MINUTES_PER_DAY: i64 = 1440;
const MICROS_PER_MINUTE: i64 = 60_000_000;

/// A local calendar date: days since 1970-01-01.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date(pub i32);

impl Date {
    /// `YYYY-MM-DD` (a real calendar date, years 1970 to 9999).
    pub fn parse(text: &str) -> Option<Date> {
        let b = text.as_bytes();
        if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
            return None;
        }
        let y = digits(&b[0..4])?;
        let m = digits(&b[5..7])?;
        let d = digits(&b[8..10])?;
        if !(1970..=9999).contains(&y) || !(1..=12).contains(&m) || d < 1 || d > days_in_month(y, m)
        {
            return None;
        }
        Some(Date(days_from_civil(y as i64, m, d) as i32))
    }

    /// 0 = Monday ... 6 = Sunday (1970-01-01 was a Thursday).
    pub fn weekday(self) -> usize {
        (i64::from(self.0) + 3).rem_euclid(7) as usize
    }

    pub fn add_days(self, days: i32) -> Date {
        Date(self.0 + days)
    }

    /// Midnight at the start of this day.
    pub fn start(self) -> LocalTime {
        LocalTime(i64::from(self.0) * MINUTES_PER_DAY)
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (y, m, d) = civil_from_days(i64::from(self.0));
        write!(f, "{y:04}-{m:02}-{d:02}")
    }
}

/// A local date and time to the minute: minutes since 1970-01-01T00:00 local time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LocalTime(pub i64);

impl LocalTime {
    /// `YYYY-MM-DDTHH:MM` (or with a space instead of `T`), or a date alone, meaning its start.
    pub fn parse(text: &str) -> Option<LocalTime> {
        if text.len() == 10 {
            return Date::parse(text).map(Date::start);
        }
        let b = text.as_bytes();
        if b.len() != 16 || !(b[10] == b'T' || b[10] == b' ') {
            return None;
        }
        let date = Date::parse(&text[..10])?;
        let minute = parse_clock(&text[11..])?;
        (minute < MINUTES_PER_DAY as u32).then(|| LocalTime(date.start().0 + i64::from(minute)))
    }

    pub fn date(self) -> Date {
        Date(self.0.div_euclid(MINUTES_PER_DAY) as i32)
    }

    /// Minutes since the day's midnight.
    pub fn minute_of_day(self) -> u32 {
        self.0.rem_euclid(MINUTES_PER_DAY) as u32
    }

    pub fn add_minutes(self, minutes: i64) -> LocalTime {
        LocalTime(self.0 + minutes)
    }

    /// The UTC instant of this local time under `offset`.
    pub fn to_timestamp(self, offset: UtcOffset) -> Timestamp {
        let micros = (self.0 - i64::from(offset.0)) * MICROS_PER_MINUTE;
        Timestamp::from_unix_micros(micros.max(0) as u64)
    }

    /// The local time (rounded down to the minute) of a UTC instant under `offset`.
    pub fn from_timestamp(t: Timestamp, offset: UtcOffset) -> LocalTime {
        let minutes = (t.unix_micros() / MICROS_PER_MINUTE as u64) as i64;
        LocalTime(minutes + i64::from(offset.0))
    }
}

impl fmt::Display for LocalTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.minute_of_day();
        write!(f, "{}T{:02}:{:02}", self.date(), m / 60, m % 60)
    }
}

/// `HH:MM` to minutes since midnight; `24:00` is accepted (the end of a day).
pub fn parse_clock(text: &str) -> Option<u32> {
    let b = text.as_bytes();
    if b.len() != 5 || b[2] != b':' {
        return None;
    }
    let h = digits(&b[0..2])?;
    let m = digits(&b[3..5])?;
    if m >= 60 || h > 24 || (h == 24 && m != 0) {
        return None;
    }
    Some(h * 60 + m)
}

/// `HH:MM` of minutes since midnight.
pub fn format_clock(minutes: u32) -> String {
    format!("{:02}:{:02}", minutes / 60, minutes % 60)
}

/// The city's offset from UTC, in minutes (Moscow: +180).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UtcOffset(pub i32);

impl UtcOffset {
    pub const MOSCOW: UtcOffset = UtcOffset(180);

    /// `+HH:MM` or `-HH:MM`, up to 18 hours.
    pub fn parse(text: &str) -> Option<UtcOffset> {
        let sign = match text.as_bytes().first()? {
            b'+' => 1,
            b'-' => -1,
            _ => return None,
        };
        let minutes = parse_clock(text.get(1..)?)? as i32;
        (minutes <= 18 * 60).then_some(UtcOffset(sign * minutes))
    }
}

impl fmt::Display for UtcOffset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { '-' } else { '+' };
        let m = self.0.unsigned_abs();
        write!(f, "{sign}{:02}:{:02}", m / 60, m % 60)
    }
}

fn digits(b: &[u8]) -> Option<u32> {
    b.iter().try_fold(0u32, |acc, &c| {
        c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
    })
}

fn is_leap(y: u32) -> bool {
    (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400)
}

fn days_in_month(y: u32, m: u32) -> u32 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Howard Hinnant's `days_from_civil`.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Howard Hinnant's `civil_from_days`.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_parse_print_and_know_their_weekday() {
        // Weekdays from a calendar: 2025-03-03 was a Monday, 2024-02-29 a Thursday.
        for (text, weekday) in [
            ("1970-01-01", 3),
            ("2024-02-29", 3),
            ("2025-03-03", 0),
            ("2025-03-09", 6),
            ("2000-03-01", 2),
        ] {
            let date = Date::parse(text).unwrap();
            assert_eq!(date.to_string(), text);
            assert_eq!(date.weekday(), weekday, "{text}");
        }
        assert_eq!(Date::parse("2025-03-03").unwrap().0, 20_150);
        for bad in [
            "2025-02-29",
            "2025-13-01",
            "2025-00-10",
            "25-03-03",
            "2025/03/03",
            "2025-03-3x",
            "1969-12-31",
        ] {
            assert_eq!(Date::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn local_times_and_utc() {
        let t = LocalTime::parse("2025-03-03T09:30").unwrap();
        assert_eq!(t.to_string(), "2025-03-03T09:30");
        assert_eq!(LocalTime::parse("2025-03-03 09:30"), Some(t));
        assert_eq!(
            LocalTime::parse("2025-03-03"),
            LocalTime::parse("2025-03-03T00:00")
        );
        assert_eq!(LocalTime::parse("2025-03-03T24:00"), None);
        assert_eq!(LocalTime::parse("2025-03-03T09:60"), None);
        // 09:30 in Moscow is 06:30 UTC.
        let utc = t.to_timestamp(UtcOffset::MOSCOW);
        assert_eq!(utc.to_string(), "2025-03-03T06:30:00.000000Z");
        assert_eq!(LocalTime::from_timestamp(utc, UtcOffset::MOSCOW), t);
        assert_eq!(UtcOffset::parse("+03:00"), Some(UtcOffset::MOSCOW));
        assert_eq!(UtcOffset::parse("-05:30"), Some(UtcOffset(-330)));
        assert_eq!(UtcOffset(-330).to_string(), "-05:30");
        assert_eq!(UtcOffset::parse("03:00"), None);
        assert_eq!(parse_clock("24:00"), Some(1440));
        assert_eq!(format_clock(570), "09:30");
    }
}
