//! Percentiles of sorted samples, in the units the tables print.

/// The `p`th percentile (nearest rank) of sorted µs samples, in ms; NaN when
/// there are none.
pub fn percentile_ms(sorted_us: &[u32], p: f64) -> f64 {
    if sorted_us.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * (sorted_us.len() - 1) as f64).round() as usize;
    f64::from(sorted_us[rank.min(sorted_us.len() - 1)]) / 1000.0
}

/// A latency in ms for a table: 2 decimals below 10 ms, whole ms above,
/// `-` when there was none.
pub fn ms(v: f64) -> String {
    if v.is_nan() {
        "-".into()
    } else if v < 10.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.0}")
    }
}

/// `p50 a  p99 b  p99.9 c  max d` of sorted µs samples.
pub fn summary(sorted_us: &[u32]) -> String {
    format!(
        "p50 {} ms  p99 {} ms  p99.9 {} ms  max {} ms",
        ms(percentile_ms(sorted_us, 50.0)),
        ms(percentile_ms(sorted_us, 99.0)),
        ms(percentile_ms(sorted_us, 99.9)),
        ms(percentile_ms(sorted_us, 100.0)),
    )
}
