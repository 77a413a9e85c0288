//! What every console page shares: the navigation (only what the viewer may see), rendering a
//! template into a response, and the small formatting every page uses.

use askama::Template;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::BASE;
use super::session::Viewer;

/// A rendered page.
pub struct Html(pub Result<String, askama::Error>);

impl IntoResponse for Html {
    fn into_response(self) -> Response {
        match self.0 {
            Ok(body) => {
                ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response()
            }
            Err(e) => {
                tracing::error!(error = %e, "a console page did not render");
                (StatusCode::INTERNAL_SERVER_ERROR, "the page did not render").into_response()
            }
        }
    }
}

pub fn render(template: &impl Template) -> Html {
    Html(template.render())
}

/// One link of the navigation.
pub struct NavItem {
    pub label: &'static str,
    pub href: String,
    pub active: bool,
}

/// The page header: where the viewer may go, who they are, and the token their forms carry.
pub struct Nav {
    pub items: Vec<NavItem>,
    pub who: String,
    pub csrf: String,
}

/// The console's sections, each with what it takes to see it.
pub const SECTIONS: [(&str, &str, Need); 7] = [
    ("Overview", "", Need::Admin),
    ("Events", "events", Need::Admin),
    ("Functions", "functions", Need::Admin),
    ("Dead letters", "dead-letters", Need::Admin),
    ("Buckets", "buckets", Need::Anything),
    ("Tables", "tables", Need::Anything),
    ("Usage", "usage", Need::Admin),
];

/// What a section needs: `admin:read`, or nothing beyond a session (its page lists only what
/// the viewer may read).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Need {
    Admin,
    Anything,
}

impl Nav {
    pub fn new(viewer: &Viewer, active: &str) -> Self {
        let items = SECTIONS
            .iter()
            .filter(|(_, _, need)| *need == Need::Anything || viewer.allows("admin:read", "*"))
            .map(|(label, path, _)| NavItem {
                label,
                href: format!("{BASE}/{path}"),
                active: *path == active,
            })
            .collect();
        Self {
            items,
            who: match &viewer.principal {
                eddy_node::Principal::Root => format!("{} (root)", viewer.key_id),
                other => format!("{} ({})", viewer.key_id, other.describe()),
            },
            csrf: viewer.csrf.clone(),
        }
    }
}

/// The link to an event's trace.
pub fn event_href(seq: u64) -> String {
    format!("{BASE}/events/{seq}")
}

/// `name=value&…`, each value percent-encoded for a query string.
pub fn query(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Percent-encodes `text` for a path segment or a query value.
pub fn encode(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// A time as `2026-12-01 10:22:52.123` (UTC).
pub fn time(ms: i64) -> String {
    let iso = eddy_core::time::iso8601_millis(ms);
    iso.trim_end_matches('Z').replacen('T', " ", 1)
}

/// How long ago `ms` was, roughly: `4 s`, `3 min`, `2 h`, `5 d`.
pub fn age(ms: i64, now_ms: i64) -> String {
    let seconds = (now_ms - ms).max(0) / 1000;
    match seconds {
        0..60 => format!("{seconds} s"),
        60..3600 => format!("{} min", seconds / 60),
        3600..86400 => format!("{} h", seconds / 3600),
        _ => format!("{} d", seconds / 86400),
    }
}

/// Milliseconds with a precision that suits them.
pub fn millis(ms: f64) -> String {
    if ms < 10.0 {
        format!("{ms:.2} ms")
    } else if ms < 1000.0 {
        format!("{ms:.0} ms")
    } else {
        format!("{:.2} s", ms / 1000.0)
    }
}

/// JSON, indented, for reading.
pub fn pretty(value: &serde_json::Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default()
}

/// A bar chart's bars: each value's height out of `height`, for an inline SVG.
pub struct Bar {
    pub x: u32,
    pub y: u32,
    pub height: u32,
    pub label: String,
}

pub struct Chart {
    pub title: String,
    pub bars: Vec<Bar>,
    pub width: u32,
    pub height: u32,
    pub peak: String,
}

impl Chart {
    /// `values` as bars `width` apart, scaled to the largest.
    pub fn bars(title: &str, values: &[(String, f64)], unit: &str) -> Self {
        const BAR: u32 = 6;
        const HEIGHT: u32 = 48;
        let peak = values.iter().map(|(_, v)| *v).fold(0.0, f64::max);
        let bars = values
            .iter()
            .enumerate()
            .map(|(i, (label, v))| {
                let height = if peak > 0.0 {
                    ((v / peak) * HEIGHT as f64)
                        .round()
                        .max(if *v > 0.0 { 1.0 } else { 0.0 }) as u32
                } else {
                    0
                };
                Bar {
                    x: i as u32 * BAR,
                    y: HEIGHT - height,
                    height,
                    label: format!("{label}: {} {unit}", trim_number(*v)),
                }
            })
            .collect();
        Self {
            title: title.to_string(),
            width: values.len() as u32 * BAR,
            height: HEIGHT,
            bars,
            peak: format!("peak {} {unit}", trim_number(peak)),
        }
    }
}

fn trim_number(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_encoded_for_urls_and_times_read_as_utc() {
        assert_eq!(query(&[("key", "a b/ü&x=1")]), "key=a%20b%2F%C3%BC%26x%3D1");
        assert_eq!(time(1_573_755_365_568), "2019-11-14 18:16:05.568");
        assert_eq!(age(0, 61_000), "1 min");
        assert_eq!(millis(1.234), "1.23 ms");
        assert_eq!(millis(2500.0), "2.50 s");
    }

    #[test]
    fn a_chart_scales_its_bars_to_the_peak_and_keeps_small_ones_visible() {
        let chart = Chart::bars(
            "t",
            &[("a".into(), 0.0), ("b".into(), 1.0), ("c".into(), 1000.0)],
            "events",
        );
        let heights: Vec<u32> = chart.bars.iter().map(|b| b.height).collect();
        assert_eq!(heights, [0, 1, 48]);
        assert_eq!(chart.peak, "peak 1000 events");
        assert_eq!(chart.bars[2].y, 0);
    }
}
