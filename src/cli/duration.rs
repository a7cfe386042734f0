//! The one way every duration on the command line is written: `250us`, `500ms`, `1.5s`, `5m`, `1h`, or a
//! bare number of seconds. The units are the fault specs' (`socklab::fault::spec::duration`), so
//! `--grace 2s`, `bench --duration 2s` and `--fault latency=2s` read alike; each flag only sets
//! its range.

use std::time::Duration;

/// `text` as a duration from `min` to `max` (both inclusive).
fn parse(text: &str, min: Duration, max: Duration) -> Result<Duration, String> {
    let t = text.trim();
    if t.starts_with('-') {
        return Err(format!("'{text}' is negative: durations are positive, e.g. 500ms, 30s or 5m"));
    }
    // A bare number is seconds (`--duration 0.2`); anything else goes through the fault specs' units.
    let d = match t.parse::<f64>() {
        Ok(secs) if t.bytes().all(|b| b.is_ascii_digit() || b == b'.') && secs <= 86_400.0 => {
            Duration::from_secs_f64(secs)
        }
        Ok(_) if t.bytes().all(|b| b.is_ascii_digit() || b == b'.') => Duration::MAX,
        _ => socklab::fault::spec::duration(t)
            .map_err(|e| e.replace("write e.g. 50ms or 2s", "write e.g. 500ms, 30s or 5m"))?,
    };
    if d < min || d > max {
        return Err(format!("'{text}' is out of range: use {} to {}", show(min), show(max)));
    }
    Ok(d)
}

/// A range end in the unit a person would write it in.
fn show(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 {
        "0s".into()
    } else if ms % 3_600_000 == 0 {
        format!("{}h", ms / 3_600_000)
    } else if ms % 1000 == 0 {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

/// Timeouts and limits: something must be allowed to happen, so at least 1 ms; at most a day.
pub fn limit(text: &str) -> Result<Duration, String> {
    parse(text, Duration::from_millis(1), Duration::from_secs(86_400))
}

/// Waits that may be zero (`--accept-delay 0s`, `--grace 0s`: none); at most an hour.
pub fn delay(text: &str) -> Result<Duration, String> {
    parse(text, Duration::ZERO, Duration::from_secs(3600))
}

/// `bench --duration`: at least 10 ms of load, at most an hour.
pub fn load(text: &str) -> Result<Duration, String> {
    parse(text, Duration::from_millis(10), Duration::from_secs(3600))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_flag_takes_the_same_units() {
        let ms = Duration::from_millis;
        for parse in [limit, delay, load] {
            assert_eq!(parse("250ms"), Ok(ms(250)));
            assert_eq!(parse("1.5s"), Ok(ms(1500)));
            assert_eq!(parse("2"), Ok(ms(2000)));
            assert_eq!(parse("0.2"), Ok(ms(200)));
            assert_eq!(parse("1m"), Ok(ms(60_000)));
            assert_eq!(parse("50000us"), Ok(ms(50)));
        }
        assert_eq!(delay("0s"), Ok(Duration::ZERO));
        assert_eq!(limit("24h"), Ok(Duration::from_secs(86_400)));
        assert!(limit("25h").is_err());
    }

    #[test]
    fn out_of_range_and_malformed_durations_say_what_to_write() {
        assert!(limit("0ms").unwrap_err().contains("use 1ms to 24h"));
        assert!(delay("2h").is_err());
        assert!(delay("3601").unwrap_err().contains("out of range"));
        assert!(load("5ms").unwrap_err().contains("use 10ms to 1h"));
        assert!(limit("-1s").unwrap_err().contains("negative"));
        assert!(limit("5x").unwrap_err().contains("unknown time unit"));
        assert!(limit("ms").is_err());
        assert!(limit("18446744073709551616s").is_err());
        assert!(limit("").is_err());
    }
}
