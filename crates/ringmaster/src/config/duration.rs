//! Durations as written in `ringmaster.toml`: `"500ms"`, `"30s"`, `"2m"`, `"1h"`,
//! `"1m30s"`, `"1.5s"`. A small hand-written parser; no extra crate.
use std::time::Duration;

/// The units, largest first, with their length in nanoseconds.
const UNITS: &[(&str, u128)] = &[
    ("h", 3_600_000_000_000),
    ("m", 60_000_000_000),
    ("s", 1_000_000_000),
    ("ms", 1_000_000),
];

/// Parses a duration such as `"500ms"`, `"30s"`, `"2m"`, `"1h"`, `"1m30s"` or `"1.5s"`.
///
/// A duration is one or more `<number><unit>` parts, units `h`, `m`, `s`, `ms`,
/// each at most once and largest first; `"0"` alone is also accepted. The error
/// says what was expected.
///
/// ```
/// use std::time::Duration;
/// use ringmaster::config::parse_duration;
/// assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
/// assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
/// assert!(parse_duration("30").is_err());
/// ```
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let s = text.trim();
    let invalid = |why: &str| format!("invalid duration \"{text}\": {why}");
    if s.is_empty() {
        return Err(invalid(
            "it is empty (expected e.g. \"500ms\", \"30s\", \"2m\", \"1h\")",
        ));
    }
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    let bytes = s.as_bytes();
    let mut pos = 0;
    let mut total: u128 = 0;
    // Index into UNITS of the last unit seen: the next one must be smaller.
    let mut last_unit: Option<usize> = None;
    while pos < bytes.len() {
        // The number: digits, optionally a fraction.
        let start = pos;
        while pos < bytes.len() && bytes[pos].is_ascii_digit() {
            pos += 1;
        }
        let int_part = &s[start..pos];
        let mut frac_part = "";
        if pos < bytes.len() && bytes[pos] == b'.' {
            pos += 1;
            let frac_start = pos;
            while pos < bytes.len() && bytes[pos].is_ascii_digit() {
                pos += 1;
            }
            frac_part = &s[frac_start..pos];
            if frac_part.is_empty() {
                return Err(invalid("expected digits after the decimal point"));
            }
        }
        if int_part.is_empty() && frac_part.is_empty() {
            let rest = &s[start..];
            return Err(if rest.starts_with('-') {
                invalid("a duration cannot be negative")
            } else {
                invalid(&format!(
                    "expected a number at \"{rest}\" (e.g. \"500ms\", \"30s\", \"1m30s\")"
                ))
            });
        }
        // The unit: letters.
        let unit_start = pos;
        while pos < bytes.len() && bytes[pos].is_ascii_alphabetic() {
            pos += 1;
        }
        let unit = &s[unit_start..pos];
        if unit.is_empty() {
            return Err(invalid(&format!(
                "the number {} has no unit (expected ms, s, m or h)",
                &s[start..pos]
            )));
        }
        let Some(index) = UNITS.iter().position(|(u, _)| *u == unit) else {
            return Err(invalid(&format!(
                "unknown unit \"{unit}\" (expected ms, s, m or h)"
            )));
        };
        if let Some(last) = last_unit {
            if index <= last {
                return Err(invalid(&format!(
                    "the unit \"{unit}\" comes after \"{}\" (write each unit once, largest first, e.g. \"1m30s\")",
                    UNITS[last].0
                )));
            }
        }
        last_unit = Some(index);
        let nanos_per_unit = UNITS[index].1;
        let too_long = || invalid("it is too long");
        let int: u128 = if int_part.is_empty() {
            0
        } else {
            int_part.parse().map_err(|_| too_long())?
        };
        let mut part = int.checked_mul(nanos_per_unit).ok_or_else(too_long)?;
        if !frac_part.is_empty() {
            // At most nanosecond precision: digits beyond 9 are dropped.
            let digits = &frac_part[..frac_part.len().min(9)];
            let frac: u128 = digits.parse().map_err(|_| too_long())?;
            let scale = 10u128.pow(digits.len() as u32);
            part = part
                .checked_add(frac * nanos_per_unit / scale)
                .ok_or_else(too_long)?;
        }
        total = total.checked_add(part).ok_or_else(too_long)?;
    }
    if total > MAX.as_nanos() {
        return Err(invalid("it is too long (at most 8760h, a year)"));
    }
    let secs = u64::try_from(total / 1_000_000_000).map_err(|_| invalid("it is too long"))?;
    let nanos = (total % 1_000_000_000) as u32;
    Ok(Duration::new(secs, nanos))
}

/// The longest duration accepted: a year. Longer ones are typing errors, and a
/// deadline computed from one (`now + duration`) must not overflow.
pub const MAX: Duration = Duration::from_secs(365 * 24 * 3600);

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> Duration {
        parse_duration(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn at_most_a_year() {
        assert_eq!(ok("8760h"), MAX);
        for long in [
            "8760h1ms",
            "18446744073709551615s",
            "99999999999999999999999h",
        ] {
            let e = parse_duration(long).expect_err(long);
            assert!(e.contains("too long"), "{long}: {e}");
        }
    }

    #[test]
    fn single_units() {
        assert_eq!(ok("500ms"), Duration::from_millis(500));
        assert_eq!(ok("30s"), Duration::from_secs(30));
        assert_eq!(ok("2m"), Duration::from_secs(120));
        assert_eq!(ok("1h"), Duration::from_secs(3600));
        assert_eq!(ok("0s"), Duration::ZERO);
        assert_eq!(ok("0"), Duration::ZERO);
        assert_eq!(ok(" 10s "), Duration::from_secs(10));
    }

    #[test]
    fn compound_and_fractions() {
        assert_eq!(ok("1m30s"), Duration::from_secs(90));
        assert_eq!(ok("1h2m3s4ms"), Duration::from_millis(3_723_004));
        assert_eq!(ok("1.5s"), Duration::from_millis(1500));
        assert_eq!(ok("0.25h"), Duration::from_secs(900));
        assert_eq!(ok(".5s"), Duration::from_millis(500));
        assert_eq!(ok("1.0000000019s"), Duration::new(1, 1));
    }

    #[test]
    fn refused() {
        for (input, says) in [
            ("", "empty"),
            ("30", "no unit"),
            ("1.5", "no unit"),
            ("5x", "unknown unit \"x\""),
            ("5 s", "no unit"),
            ("s", "expected a number"),
            ("-1s", "negative"),
            ("1.s", "after the decimal point"),
            ("30s1m", "comes after"),
            ("1s1s", "comes after"),
            ("1m30", "no unit"),
            ("99999999999999999999999999999h", "too long"),
            ("10secs", "unknown unit \"secs\""),
        ] {
            let err = parse_duration(input).expect_err(input);
            assert!(err.contains(says), "{input:?}: {err}");
            assert!(err.starts_with("invalid duration"), "{err}");
        }
    }
}
