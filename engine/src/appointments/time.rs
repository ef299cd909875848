//! Local dates and times of the city's clocks, to the minute, and their link to UTC timestamps.
//!
//! Schedules, slot ids and absences are written in the city's local time (`2025-03-03T09:30`);
//! the decision log keeps UTC [`Timestamp`]s. The city's [`Zone`] links them with its real rules
//! (jiff, with the IANA time-zone database built in): `Europe/Moscow` kept +04:00 from 2011 to
//! 2014 and has kept +03:00 since. Calendar arithmetic is jiff's too; [`Date`] and [`LocalTime`]
//! only keep a compact form (days or minutes since 1970-01-01) for the slot layout.

use std::fmt;

use crate::log::Timestamp;

/// 1970-01-01, what [`Date`] counts from.
const EPOCH: jiff::civil::Date = jiff::civil::date(1970, 1, 1);

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
        if !(1970..=9999).contains(&y) {
            return None;
        }
        // Rejects days a month does not have (2025-02-29).
        let date = jiff::civil::Date::new(y as i16, m as i8, d as i8).ok()?;
        Some(Date::from_civil(date))
    }

    fn from_civil(date: jiff::civil::Date) -> Date {
        Date((date - EPOCH).get_days())
    }

    fn to_civil(self) -> jiff::civil::Date {
        EPOCH
            .checked_add(jiff::Span::new().days(self.0))
            .unwrap_or(EPOCH)
    }

    /// 0 = Monday ... 6 = Sunday.
    pub fn weekday(self) -> usize {
        self.to_civil().weekday().to_monday_zero_offset() as usize
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
        let d = self.to_civil();
        write!(f, "{:04}-{:02}-{:02}", d.year(), d.month(), d.day())
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

    fn to_civil(self) -> jiff::civil::DateTime {
        let minute = self.minute_of_day();
        self.date().to_civil().to_datetime(jiff::civil::time(
            (minute / 60) as i8,
            (minute % 60) as i8,
            0,
            0,
        ))
    }

    /// The UTC instant of this local time in `zone`. A local time that a change of the clocks
    /// skipped or repeated is taken as jiff's `compatible` rule does (as RFC 5545 does).
    pub fn to_timestamp(self, zone: &Zone) -> Timestamp {
        let micros = zone
            .tz
            .to_timestamp(self.to_civil())
            .map_or(0, |ts| ts.as_microsecond());
        Timestamp::from_unix_micros(micros.max(0) as u64)
    }

    /// The local time (rounded down to the minute) of a UTC instant in `zone`.
    pub fn from_timestamp(t: Timestamp, zone: &Zone) -> LocalTime {
        let micros = i64::try_from(t.unix_micros()).unwrap_or(i64::MAX);
        let offset = jiff::Timestamp::from_microsecond(micros)
            .map(|ts| zone.tz.to_offset(ts).seconds())
            .unwrap_or(0);
        let minutes = micros.div_euclid(MICROS_PER_MINUTE) + i64::from(offset).div_euclid(60);
        LocalTime(minutes)
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

/// The city's time zone: an IANA zone with its rules (`Europe/Moscow`), or a fixed offset from
/// UTC (`+03:00`, what data folders loaded before zones were named hold).
#[derive(Debug, Clone)]
pub struct Zone {
    name: String,
    tz: jiff::tz::TimeZone,
}

impl Zone {
    /// Moscow's zone.
    pub fn moscow() -> Zone {
        Zone::parse("Europe/Moscow").unwrap_or_else(|| Zone {
            name: "+03:00".into(),
            tz: jiff::tz::TimeZone::fixed(jiff::tz::offset(3)),
        })
    }

    /// An IANA zone name (`Europe/Moscow`), or `+HH:MM` / `-HH:MM` up to 18 hours.
    pub fn parse(text: &str) -> Option<Zone> {
        let tz = match text.as_bytes().first()? {
            sign @ (b'+' | b'-') => {
                let minutes = parse_clock(text.get(1..)?)? as i32;
                if minutes > 18 * 60 {
                    return None;
                }
                let seconds = minutes * 60 * if *sign == b'-' { -1 } else { 1 };
                jiff::tz::TimeZone::fixed(jiff::tz::Offset::from_seconds(seconds).ok()?)
            }
            _ => jiff::tz::TimeZone::get(text).ok()?,
        };
        Some(Zone {
            name: text.to_owned(),
            tz,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The zone's offset from UTC at `t`, `+HH:MM`.
    pub fn offset_at(&self, t: Timestamp) -> String {
        let micros = i64::try_from(t.unix_micros()).unwrap_or(i64::MAX);
        let seconds = jiff::Timestamp::from_microsecond(micros)
            .map(|ts| self.tz.to_offset(ts).seconds())
            .unwrap_or(0);
        let sign = if seconds < 0 { '-' } else { '+' };
        let minutes = seconds.unsigned_abs() / 60;
        format!("{sign}{:02}:{:02}", minutes / 60, minutes % 60)
    }
}

impl PartialEq for Zone {
    fn eq(&self, other: &Zone) -> bool {
        self.name == other.name
    }
}

impl Eq for Zone {}

impl fmt::Display for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

fn digits(b: &[u8]) -> Option<u32> {
    b.iter().try_fold(0u32, |acc, &c| {
        c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
    })
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
        let moscow = Zone::moscow();
        let utc = t.to_timestamp(&moscow);
        assert_eq!(utc.to_string(), "2025-03-03T06:30:00.000000Z");
        assert_eq!(LocalTime::from_timestamp(utc, &moscow), t);
        // The real rules: +04:00 in the winter of 2012, +03:00 since 26 October 2014.
        let winter_2012 = LocalTime::parse("2012-01-10T09:30").unwrap();
        assert_eq!(
            winter_2012.to_timestamp(&moscow).to_string(),
            "2012-01-10T05:30:00.000000Z"
        );
        let fixed = Zone::parse("+03:00").unwrap();
        assert_eq!(
            winter_2012.to_timestamp(&fixed).to_string(),
            "2012-01-10T06:30:00.000000Z"
        );
        let west = Zone::parse("-05:30").unwrap();
        assert_eq!(
            t.to_timestamp(&west).to_string(),
            "2025-03-03T15:00:00.000000Z"
        );
        assert_eq!(west.to_string(), "-05:30");
        assert_eq!(Zone::parse("03:00"), None);
        assert_eq!(Zone::parse("Europe/Atlantis"), None);
        assert_eq!(parse_clock("24:00"), Some(1440));
        assert_eq!(format_clock(570), "09:30");
    }
}
