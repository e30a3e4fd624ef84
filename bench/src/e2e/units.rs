//! How numbers read in the report: SI prefixes, milliseconds, percent of one core.

/// `1.54 M`, `183 k`, `950`.
pub fn si(v: f64) -> String {
    let a = v.abs();
    if a >= 1e9 {
        format!("{:.2} G", v / 1e9)
    } else if a >= 1e6 {
        format!("{:.2} M", v / 1e6)
    } else if a >= 1e4 {
        format!("{:.0} k", v / 1e3)
    } else if a >= 1e3 {
        format!("{:.1} k", v / 1e3)
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

/// Microseconds as `0.41 ms`, `12.3 ms`, `153 ms`.
pub fn ms(us: f64) -> String {
    let m = us / 1000.0;
    if m < 10.0 {
        format!("{m:.2} ms")
    } else if m < 100.0 {
        format!("{m:.1} ms")
    } else {
        format!("{m:.0} ms")
    }
}

/// Percent of one core, `–` when unknown.
pub fn pct(v: Option<f64>) -> String {
    v.map_or("–".into(), |v| format!("{v:.0} %"))
}
