//! Request metrics in the Prometheus text exposition format (version 0.0.4).
//!
//! Counters are labelled with the matched route template (`/api/v1/sites/{site_id}`), never the
//! raw path, so ids do not leak into metrics and the label set stays bounded.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};

use crate::AppState;

/// Upper bounds of the latency histogram buckets, in seconds.
const BUCKETS: [f64; 11] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

#[derive(Debug, Default, Clone)]
struct Histogram {
    bucket_counts: [u64; BUCKETS.len()],
    count: u64,
    sum_seconds: f64,
}

/// Counters of one route template. Requests are keyed by method and status.
#[derive(Debug, Default)]
struct RouteCounters {
    requests: BTreeMap<(String, u16), u64>,
    latency: Histogram,
}

/// The process's request metrics.
#[derive(Debug)]
pub struct Metrics {
    started: Instant,
    /// Route template → counters. Looking a route up by `&str` allocates nothing after the
    /// route's first request, which keeps the middleware cheap.
    counters: Mutex<HashMap<String, RouteCounters>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            started: Instant::now(),
            counters: Mutex::default(),
        }
    }
}

impl Metrics {
    /// Counts one request under its method label and route template.
    pub fn record(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        let Ok(mut counters) = self.counters.lock() else {
            return;
        };
        if !counters.contains_key(route) {
            counters.insert(route.to_owned(), RouteCounters::default());
        }
        let Some(route_counters) = counters.get_mut(route) else {
            return;
        };
        let known = route_counters
            .requests
            .iter_mut()
            .find(|((known_method, known_status), _)| {
                known_method == method && *known_status == status
            });
        match known {
            Some((_, count)) => *count += 1,
            None => {
                route_counters
                    .requests
                    .insert((method.to_owned(), status), 1);
            }
        }

        let histogram = &mut route_counters.latency;
        let seconds = elapsed.as_secs_f64();
        for (bound, count) in BUCKETS.iter().zip(histogram.bucket_counts.iter_mut()) {
            if seconds <= *bound {
                *count += 1;
            }
        }
        histogram.count += 1;
        histogram.sum_seconds += seconds;
    }

    /// Renders every metric in the Prometheus text format.
    #[must_use]
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "# HELP stillpoint_build_info Build information.");
        let _ = writeln!(out, "# TYPE stillpoint_build_info gauge");
        let _ = writeln!(
            out,
            "stillpoint_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        );
        let _ = writeln!(
            out,
            "# HELP stillpoint_uptime_seconds Seconds since the server started."
        );
        let _ = writeln!(out, "# TYPE stillpoint_uptime_seconds gauge");
        let _ = writeln!(
            out,
            "stillpoint_uptime_seconds {:.3}",
            self.started.elapsed().as_secs_f64()
        );

        let Ok(counters) = self.counters.lock() else {
            return out;
        };
        let mut routes: Vec<(&String, &RouteCounters)> = counters.iter().collect();
        routes.sort_by_key(|(route, _)| *route);
        let _ = writeln!(
            out,
            "# HELP stillpoint_http_requests_total HTTP requests by method, route and status."
        );
        let _ = writeln!(out, "# TYPE stillpoint_http_requests_total counter");
        for (route, route_counters) in &routes {
            let route = escape_label(route);
            for ((method, status), count) in &route_counters.requests {
                let _ = writeln!(
                    out,
                    "stillpoint_http_requests_total{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}} {count}"
                );
            }
        }

        let _ = writeln!(
            out,
            "# HELP stillpoint_http_request_duration_seconds Time to produce a response, by route."
        );
        let _ = writeln!(
            out,
            "# TYPE stillpoint_http_request_duration_seconds histogram"
        );
        for (route, route_counters) in &routes {
            let route = escape_label(route);
            let histogram = &route_counters.latency;
            for (bound, count) in BUCKETS.iter().zip(histogram.bucket_counts) {
                let _ = writeln!(
                    out,
                    "stillpoint_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{bound}\"}} {count}"
                );
            }
            let _ = writeln!(
                out,
                "stillpoint_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}",
                histogram.count
            );
            let _ = writeln!(
                out,
                "stillpoint_http_request_duration_seconds_sum{{route=\"{route}\"}} {}",
                histogram.sum_seconds
            );
            let _ = writeln!(
                out,
                "stillpoint_http_request_duration_seconds_count{{route=\"{route}\"}} {}",
                histogram.count
            );
        }
        out
    }
}

fn escape_label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The label of a request method. Clients may send any token as a method, and counting each one
/// would let them grow the metrics without bound, so non-standard methods share one label.
#[must_use]
pub fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// `GET /metrics`.
pub async fn metrics_endpoint(State(state): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        state.metrics.render(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative() {
        let metrics = Metrics::default();
        metrics.record("GET", "/healthz", 200, Duration::from_millis(3));
        metrics.record("GET", "/healthz", 200, Duration::from_millis(300));
        let text = metrics.render();
        assert!(
            text.contains(
                "stillpoint_http_requests_total{method=\"GET\",route=\"/healthz\",status=\"200\"} 2"
            ),
            "{text}"
        );
        assert!(
            text.contains("route=\"/healthz\",le=\"0.001\"} 0"),
            "{text}"
        );
        assert!(
            text.contains("route=\"/healthz\",le=\"0.005\"} 1"),
            "{text}"
        );
        assert!(text.contains("route=\"/healthz\",le=\"0.5\"} 2"), "{text}");
        assert!(
            text.contains("stillpoint_http_request_duration_seconds_count{route=\"/healthz\"} 2"),
            "{text}"
        );
    }
}
