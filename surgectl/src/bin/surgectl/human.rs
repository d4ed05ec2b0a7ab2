//! How tables show times, ages and sizes to people (JSON keeps milliseconds and bytes).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chrono::{DateTime, Local, SecondsFormat};

/// A Unix-ms time as local RFC 3339, to the second; "-" for 0.
pub(crate) fn local_time(ms: u64) -> String {
    if ms == 0 {
        return "-".into();
    }
    match DateTime::from_timestamp_millis(ms as i64) {
        Some(t) => t
            .with_timezone(&Local)
            .to_rfc3339_opts(SecondsFormat::Secs, false),
        None => ms.to_string(),
    }
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// How long ago a Unix-ms time was, as "1m 5s".
pub(crate) fn age(ms: u64) -> String {
    if ms == 0 {
        return "-".into();
    }
    let secs = Duration::from_millis(now_ms().saturating_sub(ms)).as_secs();
    humantime::format_duration(Duration::from_secs(secs)).to_string()
}

/// Bytes in binary units: "512 B", "3.4 MiB".
pub(crate) fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = UNITS[0];
    for u in &UNITS[1..] {
        if v < 1024.0 {
            break;
        }
        v /= 1024.0;
        unit = u;
    }
    format!("{v:.1} {unit}")
}

/// A list of node ids, "1,2,4"; "-" when empty.
pub(crate) fn ids(list: &[u64]) -> String {
    if list.is_empty() {
        return "-".into();
    }
    list.iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_lists_read_well() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(3 << 30), "3.0 GiB");
        assert_eq!(ids(&[1, 2, 4]), "1,2,4");
        assert_eq!(ids(&[]), "-");
        assert_eq!(local_time(0), "-");
        assert!(local_time(1_764_000_000_000).starts_with("2025-11-2"));
    }
}
