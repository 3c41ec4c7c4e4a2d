//! The sweep's plot as SVG text: p50 and p99 latency (log scale) against
//! delivered throughput, one line per side and percentile, so the knee —
//! where latency leaves the floor and throughput stops following the offered
//! rate — is visible at a glance.

use std::fmt::Write as _;

use crate::report::SweepRow;
use crate::stats::percentile_ms;

const WIDTH: f64 = 760.0;
const HEIGHT: f64 = 440.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 170.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 50.0;

struct Series {
    label: String,
    color: &'static str,
    dashed: bool,
    points: Vec<(f64, f64)>,
}

/// A round step giving about `n` ticks up to `max`.
fn nice_step(max: f64, n: f64) -> f64 {
    let raw = max / n;
    let magnitude = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0].iter().map(|m| m * magnitude).find(|s| *s >= raw).unwrap_or(magnitude * 10.0)
}

pub fn plot(rows: &[SweepRow], title: &str) -> String {
    let mut series = Vec::new();
    for (side, color) in
        [("topo+pg", "#7d3c98"), ("topology", "#c0392b"), ("deployment", "#c0392b"), ("floor", "#2471a3")]
    {
        for (p, dashed) in [(50.0, false), (99.0, true)] {
            let points: Vec<(f64, f64)> = rows
                .iter()
                .filter(|r| r.side == side)
                .map(|r| (r.result.delivered_per_sec(), percentile_ms(&r.result.latencies_us, p)))
                .filter(|(x, y)| x.is_finite() && y.is_finite() && *y > 0.0)
                .collect();
            if !points.is_empty() {
                series.push(Series { label: format!("{side} p{p:.0}"), color, dashed, points });
            }
        }
    }
    let all = || series.iter().flat_map(|s| s.points.iter());
    let x_max = all().map(|p| p.0).fold(1000.0, f64::max) * 1.05;
    let y_lo = 10f64.powf(all().map(|p| p.1).fold(1.0, f64::min).log10().floor());
    let y_hi = 10f64.powf(all().map(|p| p.1).fold(10.0, f64::max).log10().ceil());
    let (pw, ph) = (WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM);
    let x = |v: f64| LEFT + v / x_max * pw;
    let y = |v: f64| TOP + ph - (v.log10() - y_lo.log10()) / (y_hi.log10() - y_lo.log10()) * ph;

    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(svg, r#"<text x="{}" y="22" font-size="14" font-weight="bold">{}</text>"#, LEFT, escape(title));
    let step = nice_step(x_max, 6.0);
    let mut v = 0.0;
    while v <= x_max {
        let _ = writeln!(
            svg,
            r##"<line x1="{0:.1}" y1="{TOP}" x2="{0:.1}" y2="{1:.1}" stroke="#ddd"/><text x="{0:.1}" y="{2:.1}" text-anchor="middle">{3}k</text>"##,
            x(v),
            TOP + ph,
            TOP + ph + 16.0,
            v / 1000.0
        );
        v += step;
    }
    let mut d = y_lo;
    while d <= y_hi * 1.001 {
        let label = if d < 1.0 { format!("{d}") } else { format!("{d:.0}") };
        let _ = writeln!(
            svg,
            r##"<line x1="{LEFT}" y1="{0:.1}" x2="{1:.1}" y2="{0:.1}" stroke="#ddd"/><text x="{2:.1}" y="{3:.1}" text-anchor="end">{label}</text>"##,
            y(d),
            LEFT + pw,
            LEFT - 6.0,
            y(d) + 4.0
        );
        d *= 10.0;
    }
    let _ = writeln!(
        svg,
        r##"<rect x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}" fill="none" stroke="#333"/>
<text x="{:.1}" y="{:.1}" text-anchor="middle">delivered deliveries/s (frames to browsers)</text>
<text transform="translate(18 {:.1}) rotate(-90)" text-anchor="middle">send→receive latency, ms (log)</text>"##,
        LEFT + pw / 2.0,
        HEIGHT - 10.0,
        TOP + ph / 2.0
    );
    for (i, s) in series.iter().enumerate() {
        let dash = if s.dashed { r#" stroke-dasharray="6 4""# } else { "" };
        let path: Vec<String> = s.points.iter().map(|(px, py)| format!("{:.1},{:.1}", x(*px), y(*py))).collect();
        let _ = writeln!(
            svg,
            r#"<polyline points="{}" fill="none" stroke="{}" stroke-width="2"{dash}/>"#,
            path.join(" "),
            s.color
        );
        for (px, py) in &s.points {
            let _ = writeln!(svg, r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{}"/>"#, x(*px), y(*py), s.color);
        }
        let ly = TOP + 10.0 + i as f64 * 20.0;
        let lx = LEFT + pw + 15.0;
        let _ = writeln!(
            svg,
            r#"<line x1="{lx}" y1="{ly}" x2="{}" y2="{ly}" stroke="{}" stroke-width="2"{dash}/><text x="{}" y="{}">{}</text>"#,
            lx + 30.0,
            s.color,
            lx + 36.0,
            ly + 4.0,
            escape(&s.label)
        );
    }
    svg.push_str("</svg>\n");
    svg
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}
