//! The in-memory log of a report: a `tracing` layer that keeps every event in a bounded buffer.

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::filter::{Filtered, Targets};
use tracing_subscriber::layer::Context as LayerContext;
use tracing_subscriber::registry::LookupSpan;

/// One captured event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct LogEntry {
    /// Milliseconds since the capture started.
    pub t_ms: f64,
    /// `error`, `warn`, `info`, `debug` or `trace`.
    pub level: String,
    /// The module (or, for `log` records, the original target).
    pub target: String,
    /// The message.
    pub message: String,
    /// The other fields, as JSON values.
    pub fields: Map<String, Value>,
}

impl LogEntry {
    fn marker(t_ms: f64, dropped: u64) -> Self {
        Self {
            t_ms,
            level: "warn".to_owned(),
            target: module_path!().to_owned(),
            message: format!("{dropped} log entries dropped here to keep the report small"),
            fields: Map::new(),
        }
    }
}

/// Collects log events into a bounded buffer; cheap to clone, all clones share the buffer.
///
/// When full it keeps the first half of its capacity (how things started) and the most recent
/// rest (how they ended), and counts what it dropped in between.
#[derive(Clone)]
pub struct LogCapture {
    shared: Arc<Shared>,
}

struct Shared {
    start: Instant,
    buffer: Mutex<Buffer>,
}

struct Buffer {
    head: Vec<LogEntry>,
    tail: VecDeque<LogEntry>,
    head_cap: usize,
    tail_cap: usize,
    dropped: u64,
    /// Time of the last dropped entry, where the marker goes.
    dropped_at: f64,
}

impl fmt::Debug for LogCapture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (entries, dropped) = self.entries();
        f.debug_struct("LogCapture")
            .field("entries", &entries.len())
            .field("dropped", &dropped)
            .finish()
    }
}

impl LogCapture {
    /// A capture that keeps at most `capacity` entries (at least 2).
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(2);
        let head_cap = capacity / 2;
        Self {
            shared: Arc::new(Shared {
                start: Instant::now(),
                buffer: Mutex::new(Buffer {
                    head: Vec::new(),
                    tail: VecDeque::new(),
                    head_cap,
                    tail_cap: capacity - head_cap,
                    dropped: 0,
                    dropped_at: 0.0,
                }),
            }),
        }
    }

    /// The layer with the report's filter: debug and up from localpair's own crates, info and
    /// up from everything else (so a chatty dependency cannot push our lines out).
    pub fn layer<S>(&self) -> Filtered<CaptureLayer, Targets, S>
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        self.unfiltered_layer().with_filter(Self::filter())
    }

    /// The filter [`layer`](Self::layer) uses, for a caller that wraps the layer itself.
    pub fn filter() -> Targets {
        Targets::new()
            .with_default(Level::INFO)
            .with_target("localpair", Level::DEBUG)
    }

    /// The layer without a filter: it records whatever its subscriber lets through.
    pub fn unfiltered_layer(&self) -> CaptureLayer {
        CaptureLayer {
            shared: Arc::clone(&self.shared),
        }
    }

    /// The entries kept so far (a marker entry stands where some were dropped), and how many
    /// were dropped.
    pub fn entries(&self) -> (Vec<LogEntry>, u64) {
        let buffer = self
            .shared
            .buffer
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let mut out = buffer.head.clone();
        if buffer.dropped > 0 {
            out.push(LogEntry::marker(buffer.dropped_at, buffer.dropped));
        }
        out.extend(buffer.tail.iter().cloned());
        (out, buffer.dropped)
    }

    fn push(&self, entry: LogEntry) {
        let mut buffer = self
            .shared
            .buffer
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if buffer.head.len() < buffer.head_cap {
            buffer.head.push(entry);
            return;
        }
        if buffer.tail.len() >= buffer.tail_cap
            && let Some(old) = buffer.tail.pop_front()
        {
            buffer.dropped += 1;
            buffer.dropped_at = old.t_ms;
        }
        buffer.tail.push_back(entry);
    }
}

/// The layer that feeds a [`LogCapture`].
pub struct CaptureLayer {
    shared: Arc<Shared>,
}

impl fmt::Debug for CaptureLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CaptureLayer").finish_non_exhaustive()
    }
}

impl<S: Subscriber> Layer<S> for CaptureLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: LayerContext<'_, S>) {
        let meta = event.metadata();
        let mut visitor = Fields::default();
        event.record(&mut visitor);
        // Records bridged from the `log` crate carry their real target as a field.
        let target = match visitor.fields.remove("log.target") {
            Some(Value::String(target)) => target,
            _ => meta.target().to_owned(),
        };
        visitor.fields.retain(|key, _| !key.starts_with("log."));
        let capture = LogCapture {
            shared: Arc::clone(&self.shared),
        };
        capture.push(LogEntry {
            t_ms: (self.shared.start.elapsed().as_secs_f64() * 100_000.0).round() / 100.0,
            level: meta.level().as_str().to_ascii_lowercase(),
            target,
            message: visitor.message.unwrap_or_default(),
            fields: visitor.fields,
        });
    }
}

#[derive(Default)]
struct Fields {
    message: Option<String>,
    fields: Map<String, Value>,
}

impl Fields {
    fn put(&mut self, field: &Field, value: Value) {
        if field.name() == "message" {
            self.message = Some(match value {
                Value::String(s) => s,
                other => other.to_string(),
            });
        } else {
            self.fields.insert(field.name().to_owned(), value);
        }
    }
}

impl Visit for Fields {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(field, serde_json::json!(value));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, Value::from(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, Value::from(value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, Value::Bool(value));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, Value::String(value.to_owned()));
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        let mut text = value.to_string();
        let mut cause = value.source();
        while let Some(inner) = cause {
            text.push_str(&format!(": {inner}"));
            cause = inner.source();
        }
        self.put(field, Value::String(text));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.put(field, Value::String(format!("{value:?}")));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::layer::SubscriberExt as _;

    #[test]
    fn captures_level_target_message_and_fields() {
        let capture = LogCapture::new(100);
        let subscriber = tracing_subscriber::registry().with(capture.unfiltered_layer());
        tracing::subscriber::with_default(subscriber, || {
            let error = std::io::Error::other("boom");
            tracing::warn!(port = 5353_u64, ok = true, ratio = 0.5, name = "eth0", %error, "multicast {}", "silent");
            tracing::debug!(addr = ?std::net::Ipv4Addr::LOCALHOST, "plain");
        });
        let (entries, dropped) = capture.entries();
        assert_eq!(dropped, 0);
        assert_eq!(entries.len(), 2);
        let e = &entries[0];
        assert_eq!(e.level, "warn");
        assert_eq!(e.target, module_path!());
        assert_eq!(e.message, "multicast silent");
        assert_eq!(e.fields["port"], 5353);
        assert_eq!(e.fields["ok"], true);
        assert_eq!(e.fields["ratio"], 0.5);
        assert_eq!(e.fields["name"], "eth0");
        assert_eq!(e.fields["error"], "boom");
        assert!(e.t_ms >= 0.0);
        assert_eq!(entries[1].level, "debug");
        assert_eq!(entries[1].fields["addr"], "127.0.0.1");
        assert!(entries[1].t_ms >= e.t_ms);
    }

    #[test]
    fn keeps_the_start_and_the_end_within_capacity() {
        let capture = LogCapture::new(10);
        let subscriber = tracing_subscriber::registry().with(capture.unfiltered_layer());
        tracing::subscriber::with_default(subscriber, || {
            for i in 0..1000_u64 {
                tracing::info!(i, "line");
            }
        });
        let (entries, dropped) = capture.entries();
        assert_eq!(dropped, 990);
        // 5 first, the marker, 5 last.
        assert_eq!(entries.len(), 11);
        let index = |e: &LogEntry| e.fields.get("i").and_then(Value::as_u64);
        let first: Vec<_> = entries[..5].iter().filter_map(index).collect();
        assert_eq!(first, [0, 1, 2, 3, 4]);
        assert!(entries[5].message.contains("990 log entries dropped"));
        let last: Vec<_> = entries[6..].iter().filter_map(index).collect();
        assert_eq!(last, [995, 996, 997, 998, 999]);
    }

    #[test]
    fn the_report_filter_keeps_our_debug_lines_and_drops_foreign_ones() {
        let capture = LogCapture::new(100);
        let subscriber = tracing_subscriber::registry().with(capture.layer());
        tracing::subscriber::with_default(subscriber, || {
            tracing::debug!(target: "localpair_mdns::daemon", "ours");
            tracing::debug!(target: "mdns_sd::service_daemon", "theirs");
            tracing::info!(target: "mdns_sd::service_daemon", "theirs, important");
        });
        let messages: Vec<String> = capture.entries().0.into_iter().map(|e| e.message).collect();
        assert_eq!(messages, ["ours", "theirs, important"]);
    }
}
