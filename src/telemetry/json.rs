//! JSON log lines: tracing-subscriber's shape (`timestamp`, `level`, `fields`, `target`), with
//! the fields of every span the event is in merged into its `fields`, and the span names, root
//! first, in `spans`.
//!
//! Each actor logs inside its span ([`crate::actors::span`]), which carries its `shard_id` and
//! such, so log queries, scripts and tests read `fields.shard_id` whether the line or its span
//! names the shard. tracing-subscriber's own JSON format keeps span fields apart (under `span`
//! and `spans`) and has no option to merge them. A field the event sets itself wins over a
//! span's, and an inner span's over an outer one's.
//!
//! ```text
//! {"timestamp":"…","level":"INFO","fields":{"message":"Shard reader finished.","shard_end":true,
//!  "shard_id":"shardId-000000000000","generation":1},"target":"kinetick::actors::shard_reader",
//!  "spans":[{"name":"shard_reader"}]}
//! ```

use std::fmt;

use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};
use serde_json::Value;
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_log::NormalizeEvent;
use tracing_subscriber::fmt::format::{FormatEvent, JsonFields, Writer};
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

/// The JSON event format; span fields are recorded by tracing-subscriber's [`JsonFields`].
#[derive(Debug, Default)]
pub struct JsonLines;

impl<S> FormatEvent<S, JsonFields> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, JsonFields>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        // A `log` record's own target and level, not the bridge's.
        let normalized = event.normalized_metadata();
        let metadata = normalized.as_ref().unwrap_or_else(|| event.metadata());
        let mut timestamp = String::new();
        SystemTime.format_time(&mut Writer::new(&mut timestamp))?;

        let mut fields = Fields::default();
        event.record(&mut fields);
        let mut spans = Vec::new();
        for span in ctx.event_scope().into_iter().flatten() {
            spans.push(SpanName { name: span.name() });
            let extensions = span.extensions();
            let Some(recorded) = extensions.get::<FormattedFields<JsonFields>>() else {
                continue;
            };
            if let Ok(Value::Object(span_fields)) = serde_json::from_str(&recorded.fields) {
                for (name, value) in span_fields {
                    fields.add_unless_set(name, value);
                }
            }
        }
        spans.reverse();

        let line = Line {
            timestamp: &timestamp,
            level: metadata.level().as_str(),
            fields: &fields,
            target: metadata.target(),
            spans,
        };
        let text = serde_json::to_string(&line).map_err(|_| fmt::Error)?;
        writer.write_str(&text)?;
        writeln!(writer)
    }
}

#[derive(Serialize)]
struct Line<'a> {
    timestamp: &'a str,
    level: &'a str,
    fields: &'a Fields,
    target: &'a str,
    /// Root first, as tracing-subscriber lists them, without the fields already merged.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    spans: Vec<SpanName>,
}

#[derive(Serialize)]
struct SpanName {
    name: &'static str,
}

/// An event's fields in the order it set them, then those its spans add.
#[derive(Default)]
struct Fields(Vec<(String, Value)>);

impl Fields {
    fn add_unless_set(&mut self, name: String, value: Value) {
        if !self.0.iter().any(|(set, _)| *set == name) {
            self.0.push((name, value));
        }
    }

    fn record(&mut self, field: &Field, value: Value) {
        let name = field.name();
        // What the `log` bridge adds is in the normalized target and level already.
        if name.starts_with("log.") {
            return;
        }
        let name = name.strip_prefix("r#").unwrap_or(name);
        self.add_unless_set(name.to_owned(), value);
    }
}

impl Serialize for Fields {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (name, value) in &self.0 {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}

impl Visit for Fields {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.record(field, value.into());
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.record(field, value.into());
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.record(field, value.into());
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.record(field, value.into());
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.record(field, value.into());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.record(field, format!("{value:?}").into());
    }
}

#[cfg(test)]
mod tests {
    use crate::actors::span;
    use crate::lease::Fence;
    use crate::telemetry::testing::{CapturedLines, json_subscriber};

    fn fence() -> Fence {
        Fence {
            shard_id: "shardId-000000000002".into(),
            owner: "worker-1".into(),
            counter: 4,
        }
    }

    #[test]
    fn a_line_in_a_readers_span_carries_its_shard_id_in_fields() {
        let captured = CapturedLines::default();
        tracing::subscriber::with_default(json_subscriber(&captured), || {
            let _reader = span::shard_reader(&fence()).entered();
            tracing::warn!(records = 3, "Records were lost.");
        });
        let lines = captured.json();
        assert_eq!(lines.len(), 1, "{lines:?}");
        let line = &lines[0];
        assert_eq!(line["level"], "WARN");
        assert_eq!(line["target"], module_path!());
        assert_eq!(line["fields"]["message"], "Records were lost.");
        assert_eq!(line["fields"]["records"], 3);
        assert_eq!(line["fields"]["shard_id"], "shardId-000000000002");
        assert_eq!(line["fields"]["generation"], 4);
        assert_eq!(
            line["spans"],
            serde_json::json!([{ "name": "shard_reader" }])
        );
        chrono::DateTime::parse_from_rfc3339(line["timestamp"].as_str().unwrap()).unwrap();
        // The order tracing-subscriber writes, for people reading the lines.
        let raw = captured.text();
        let at = |key: &str| raw.find(&format!("\"{key}\":")).unwrap();
        assert!(at("timestamp") < at("level") && at("level") < at("fields"));
        assert!(at("message") < at("records") && at("records") < at("shard_id"));
    }

    #[test]
    fn the_event_wins_over_its_spans_and_an_inner_span_over_an_outer_one() {
        let captured = CapturedLines::default();
        tracing::subscriber::with_default(json_subscriber(&captured), || {
            let _sink = span::sink(crate::barrier::SinkKind::Lake).entered();
            let _shard = span::shard(&"shardId-000000000009".into(), 2).entered();
            let _inner = tracing::error_span!("inner", generation = 5).entered();
            tracing::info!(sink = "mine", "Said.");
        });
        let line = &captured.json()[0];
        assert_eq!(line["fields"]["sink"], "mine");
        assert_eq!(line["fields"]["generation"], 5);
        assert_eq!(line["fields"]["shard_id"], "shardId-000000000009");
        let names: Vec<_> = line["spans"]
            .as_array()
            .unwrap()
            .iter()
            .map(|span| span["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["sink", "shard", "inner"]);
    }

    #[test]
    fn a_line_outside_any_span_has_only_its_own_fields() {
        let captured = CapturedLines::default();
        tracing::subscriber::with_default(json_subscriber(&captured), || {
            tracing::info!(count = 1, "Alone.");
        });
        let line = &captured.json()[0];
        assert_eq!(
            line["fields"],
            serde_json::json!({ "message": "Alone.", "count": 1 })
        );
        assert!(line.get("spans").is_none(), "{line}");
    }
}
