//! Charts drawn on the server as SVG: paths and rectangles computed here,
//! no charting library and no script.
//!
//! Every chart is an image to assistive technology (`role="img"`) with a
//! `<title>` and a `<desc>` that say what it shows in words; marks that
//! carry a figure (a spike band, a bar segment, an edge) have their own
//! `<title>`, which browsers show on hover.

use super::short_time;
use maud::{html, Markup};
use std::fmt::Write;

/// A shaded time range on a chart: a spike.
#[derive(Clone, Debug, PartialEq)]
pub struct Band {
    pub from_ms: i64,
    pub to_ms: i64,
    /// What it is, in words (the band's `<title>`).
    pub label: String,
}

/// Volume over `[from_ms, to_ms)` in buckets of `step_ms`; `points` are
/// (bucket start, posts), absent buckets count zero. Spikes are shaded
/// bands, `<rect class="spike">`, one per band that overlaps the range.
pub fn volume_chart(
    id: &str,
    title: &str,
    from_ms: i64,
    to_ms: i64,
    step_ms: i64,
    points: &[(i64, i64)],
    bands: &[Band],
) -> Markup {
    const W: f64 = 900.0;
    const H: f64 = 240.0;
    const LEFT: f64 = 52.0;
    const RIGHT: f64 = 12.0;
    const TOP: f64 = 10.0;
    const BOTTOM: f64 = 28.0;
    let step = step_ms.max(1);
    let span = (to_ms - from_ms).max(step) as f64;
    let buckets = ((to_ms - from_ms) / step).clamp(1, 1_000_000) as usize;
    let mut dense = vec![0i64; buckets];
    for &(t, n) in points {
        if t >= from_ms && t < to_ms {
            let i = ((t - from_ms) / step) as usize;
            if let Some(slot) = dense.get_mut(i) {
                *slot += n;
            }
        }
    }
    let max = dense.iter().copied().max().unwrap_or(0).max(1);
    let total: i64 = dense.iter().sum();
    let x = |t: i64| LEFT + (t - from_ms) as f64 / span * (W - LEFT - RIGHT);
    let y = |n: i64| TOP + (1.0 - n as f64 / max as f64) * (H - TOP - BOTTOM);
    // A step line: each bucket is flat over its width.
    let mut area = format!("M{:.1},{:.1}", x(from_ms), y(0));
    for (i, &n) in dense.iter().enumerate() {
        let t0 = from_ms + i as i64 * step;
        let _ = write!(area, " L{:.1},{:.1} L{:.1},{:.1}", x(t0), y(n), x(t0 + step), y(n));
    }
    let _ = write!(area, " L{:.1},{:.1} Z", x(from_ms + buckets as i64 * step), y(0));
    let shown: Vec<&Band> = bands
        .iter()
        .filter(|b| b.to_ms > from_ms && b.from_ms < to_ms)
        .collect();
    let title_id = format!("{id}-title");
    let desc_id = format!("{id}-desc");
    let desc = format!(
        "{total} posts from {} to {} UTC, at most {max} per bucket; {} spike(s) shaded.",
        short_time(tidewatch_core::Timestamp(from_ms)),
        short_time(tidewatch_core::Timestamp(to_ms)),
        shown.len()
    );
    let mid = from_ms + (to_ms - from_ms) / 2;
    html! {
        svg id=(id) viewBox=(format!("0 0 {W} {H}")) width=(W) height=(H) role="img"
            aria-labelledby=(format!("{title_id} {desc_id}")) xmlns="http://www.w3.org/2000/svg" {
            title id=(title_id) { (title) }
            desc id=(desc_id) { (desc) }
            @for b in &shown {
                @let x0 = x(b.from_ms.max(from_ms));
                @let x1 = x(b.to_ms.min(to_ms)).max(x0 + 2.0);
                rect class="spike" x=(format!("{x0:.1}")) y=(TOP) width=(format!("{:.1}", x1 - x0))
                    height=(H - TOP - BOTTOM) fill="#f28e2b" fill-opacity="0.3" {
                    title { (b.label) }
                }
            }
            path d=(area) fill="#0b57a4" fill-opacity="0.18" stroke="#0b57a4" stroke-width="1.2" {}
            line x1=(LEFT) y1=(H - BOTTOM) x2=(W - RIGHT) y2=(H - BOTTOM) stroke="#4a4a4a" {}
            line x1=(LEFT) y1=(TOP) x2=(LEFT) y2=(H - BOTTOM) stroke="#4a4a4a" {}
            text x=(LEFT - 6.0) y=(TOP + 8.0) text-anchor="end" { (max) }
            text x=(LEFT - 6.0) y=(H - BOTTOM) text-anchor="end" { "0" }
            text x=(LEFT) y=(H - 8.0) { (short_time(tidewatch_core::Timestamp(from_ms))) }
            text x=(x(mid)) y=(H - 8.0) text-anchor="middle" { (short_time(tidewatch_core::Timestamp(mid))) }
            text x=(W - RIGHT) y=(H - 8.0) text-anchor="end" { (short_time(tidewatch_core::Timestamp(to_ms))) }
        }
    }
}

/// A small line of `values` (oldest first), for a table cell.
pub fn sparkline(values: &[i64], label: &str) -> Markup {
    const W: f64 = 140.0;
    const H: f64 = 28.0;
    let max = values.iter().copied().max().unwrap_or(0).max(1);
    let n = values.len().max(2) as f64 - 1.0;
    let mut d = String::new();
    for (i, &v) in values.iter().enumerate() {
        let px = i as f64 / n * (W - 2.0) + 1.0;
        let py = 1.0 + (1.0 - v as f64 / max as f64) * (H - 2.0);
        let _ = write!(d, "{}{px:.1},{py:.1}", if i == 0 { "M" } else { " L" });
    }
    html! {
        svg class="sparkline" viewBox=(format!("0 0 {W} {H}")) width=(W) height=(H) role="img"
            aria-label=(label) xmlns="http://www.w3.org/2000/svg" {
            title { (label) }
            @if !d.is_empty() {
                path d=(d) fill="none" stroke="#0b57a4" stroke-width="1.5" {}
            }
        }
    }
}

/// One segment of a split bar.
pub struct Part<'a> {
    pub label: &'a str,
    pub count: u64,
    pub color: &'a str,
}

/// A 100 % bar split into `parts`, each with its share in its `<title>`.
pub fn split_bar(title: &str, parts: &[Part<'_>]) -> Markup {
    const W: f64 = 360.0;
    const H: f64 = 20.0;
    let total: u64 = parts.iter().map(|p| p.count).sum();
    let mut x = 0.0;
    let mut segments = Vec::new();
    for p in parts {
        let w = if total == 0 {
            0.0
        } else {
            p.count as f64 / total as f64 * W
        };
        segments.push((x, w, p));
        x += w;
    }
    let summary = parts
        .iter()
        .map(|p| format!("{} {}%", p.label, super::percent(p.count, total)))
        .collect::<Vec<_>>()
        .join(", ");
    html! {
        svg viewBox=(format!("0 0 {W} {H}")) width=(W) height=(H) role="img"
            aria-label=(format!("{title}: {summary}")) xmlns="http://www.w3.org/2000/svg" {
            title { (title) ": " (summary) }
            @if total == 0 {
                rect x="0" y="0" width=(W) height=(H) fill="#e8e8e8" {}
            }
            @for (x, w, p) in &segments {
                rect x=(format!("{x:.1}")) y="0" width=(format!("{w:.1}")) height=(H) fill=(p.color) {
                    title { (p.label) ": " (p.count) " (" (super::percent(p.count, total)) "%)" }
                }
            }
        }
    }
}

/// An edge of a network drawing: members `a` and `b` (0-based) and the
/// weight that sets its thickness.
pub struct Edge {
    pub a: usize,
    pub b: usize,
    pub weight: u64,
    pub label: String,
}

/// Where member `i` of `n` sits: evenly on a circle, member 1 at the top.
/// Deterministic, so the same group always draws the same.
pub fn circle_layout(n: usize, cx: f64, cy: f64, r: f64) -> Vec<(f64, f64)> {
    (0..n)
        .map(|i| {
            let angle = std::f64::consts::TAU * i as f64 / n.max(1) as f64 - std::f64::consts::FRAC_PI_2;
            (cx + r * angle.cos(), cy + r * angle.sin())
        })
        .collect()
}

/// A group as a network: `n` anonymous members numbered 1..=n on a circle,
/// edges as thick as their weight.
pub fn network(id: &str, title: &str, n: usize, edges: &[Edge]) -> Markup {
    const SIZE: f64 = 420.0;
    let c = SIZE / 2.0;
    let radius = c - 30.0;
    let pos = circle_layout(n, c, c, radius);
    let node_r = (std::f64::consts::PI * radius / n.max(1) as f64 * 0.8).clamp(3.0, 13.0);
    let labelled = n <= 40;
    let max_w = edges.iter().map(|e| e.weight).max().unwrap_or(1).max(1);
    let desc = format!(
        "{n} members (numbered, never named) and {} weighted ties between them.",
        edges.len()
    );
    let title_id = format!("{id}-title");
    let desc_id = format!("{id}-desc");
    html! {
        svg id=(id) viewBox=(format!("0 0 {SIZE} {SIZE}")) width=(SIZE) height=(SIZE) role="img"
            aria-labelledby=(format!("{title_id} {desc_id}")) xmlns="http://www.w3.org/2000/svg" {
            title id=(title_id) { (title) }
            desc id=(desc_id) { (desc) }
            @for e in edges {
                @if let (Some(&(x1, y1)), Some(&(x2, y2))) = (pos.get(e.a), pos.get(e.b)) {
                    line class="edge" x1=(format!("{x1:.1}")) y1=(format!("{y1:.1}")) x2=(format!("{x2:.1}")) y2=(format!("{y2:.1}"))
                        stroke="#4a6d91" stroke-opacity="0.7"
                        stroke-width=(format!("{:.1}", 0.8 + 5.0 * e.weight as f64 / max_w as f64)) {
                        title { (e.label) }
                    }
                }
            }
            @for (i, &(x, y)) in pos.iter().enumerate() {
                g class="node" {
                    title { "Member " (i + 1) }
                    circle cx=(format!("{x:.1}")) cy=(format!("{y:.1}")) r=(format!("{node_r:.1}")) fill="#12263f" {}
                    @if labelled {
                        text x=(format!("{x:.1}")) y=(format!("{:.1}", y + 4.0)) text-anchor="middle" style="fill:#fff" { (i + 1) }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_band_inside_the_range_is_one_spike_rect_and_one_outside_is_none() {
        let bands = [
            Band {
                from_ms: 60_000,
                to_ms: 120_000,
                label: "spike".into(),
            },
            Band {
                from_ms: 10 * 60_000,
                to_ms: 11 * 60_000,
                label: "later".into(),
            },
        ];
        let svg = volume_chart("c", "t", 0, 5 * 60_000, 60_000, &[(60_000, 9), (0, 1)], &bands).into_string();
        assert_eq!(svg.matches("class=\"spike\"").count(), 1);
        assert!(svg.contains("10 posts from"), "{svg}");
        assert!(svg.contains("<title id=\"c-title\">t</title>"));
    }

    #[test]
    fn the_circle_layout_is_deterministic_and_starts_at_the_top() {
        let a = circle_layout(4, 100.0, 100.0, 50.0);
        assert_eq!(a, circle_layout(4, 100.0, 100.0, 50.0));
        assert!((a[0].0 - 100.0).abs() < 1e-9 && (a[0].1 - 50.0).abs() < 1e-9);
        assert!((a[1].0 - 150.0).abs() < 1e-9 && (a[1].1 - 100.0).abs() < 1e-9);
    }

    #[test]
    fn a_split_bar_says_its_shares() {
        let svg = split_bar(
            "Sentiment",
            &[
                Part {
                    label: "negative",
                    count: 1,
                    color: "#b2182b",
                },
                Part {
                    label: "positive",
                    count: 3,
                    color: "#1a7f37",
                },
            ],
        )
        .into_string();
        assert!(
            svg.contains("aria-label=\"Sentiment: negative 25%, positive 75%\""),
            "{svg}"
        );
    }
}
