//! Small statistics and formatting helpers shared by the benchmarks' markdown output.

use std::time::Duration;

/// Nearest-rank percentile of an ascending slice (`p` in 0–100). Nearest rank, rather than
/// interpolation, so that every figure printed is a value that was actually observed.
pub fn percentile<T: Copy>(sorted: &[T], p: f64) -> Option<T> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// The median of an ascending slice of durations (the mean of the two middle values when
/// the count is even, as a median is usually defined).
pub fn median(sorted: &[Duration]) -> Option<Duration> {
    let n = sorted.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(sorted[n / 2]),
        _ => Some((sorted[n / 2 - 1] + sorted[n / 2]) / 2),
    }
}

/// The mean of `xs` and its standard error (sample standard deviation ÷ √n); the error is
/// `NaN` with fewer than two values. Used to say how far a figure averaged over a few
/// noisy rounds can be trusted.
pub fn mean_and_se(xs: &[f64]) -> (f64, f64) {
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, (var / n).sqrt())
}

/// Milliseconds with one decimal, e.g. `123.4 ms`.
pub fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// Seconds with two decimals, e.g. `12.34 s`; below a second in milliseconds, so that a
/// fast run does not read `0.00 s`.
pub fn secs(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        ms(d)
    } else {
        format!("{:.2} s", d.as_secs_f64())
    }
}

/// Microseconds shown as milliseconds with two decimals, e.g. `0.85 ms`.
pub fn us_as_ms(us: u32) -> String {
    format!("{:.2} ms", f64::from(us) / 1000.0)
}

/// An integer with comma thousands separators (`12,345`), for readable request counts.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `PASS` or `FAIL`, the last column of every target row (run-benchmarks.sh collects the
/// rows ending in either word into the summary).
pub fn verdict(ok: bool) -> &'static str {
    if ok {
        "PASS"
    } else {
        "FAIL"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<u32> = (1..=10).collect();
        assert_eq!(percentile(&v, 50.0), Some(5));
        assert_eq!(percentile(&v, 90.0), Some(9));
        assert_eq!(percentile(&v, 99.0), Some(10));
        assert_eq!(percentile(&v, 0.0), Some(1));
        assert_eq!(percentile::<u32>(&[], 50.0), None);
    }

    #[test]
    fn medians_of_odd_and_even_counts() {
        let d = |ms| Duration::from_millis(ms);
        assert_eq!(median(&[d(1), d(2), d(9)]), Some(d(2)));
        assert_eq!(median(&[d(1), d(3)]), Some(d(2)));
        assert_eq!(median(&[]), None);
    }

    #[test]
    fn mean_and_standard_error() {
        let (mean, se) = mean_and_se(&[1.0, 2.0, 3.0, 4.0]);
        assert!((mean - 2.5).abs() < 1e-12);
        // Sample variance 5/3, so SE = sqrt(5/3 / 4).
        assert!((se - (5.0f64 / 12.0).sqrt()).abs() < 1e-12);
        assert!(mean_and_se(&[1.0]).1.is_nan());
    }

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }
}
