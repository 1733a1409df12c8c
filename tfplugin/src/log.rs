//! hclog-style JSON log lines on stderr, so Terraform's `TF_LOG` shows them at their level.
//! Every message and field passes through the redaction the provider installs.
use std::fmt;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// Blanks the secrets a text may hold, before it is written.
pub type Redact = fn(&str) -> String;

struct HcLog {
    redact: Redact,
    /// `provider.<type name>`, as Terraform's own providers name their lines.
    module: String,
}

#[derive(Default)]
struct Fields {
    message: String,
    extra: serde_json::Map<String, serde_json::Value>,
}

impl tracing::field::Visit for Fields {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn fmt::Debug) {
        self.record_str(field, &format!("{value:?}"));
    }
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        if field.name() == "message" {
            self.message = value.to_string();
        } else {
            self.extra
                .insert(field.name().to_string(), serde_json::Value::from(value));
        }
    }
}

impl<S, N> FormatEvent<S, N> for HcLog
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut ts = String::new();
        SystemTime.format_time(&mut Writer::new(&mut ts))?;
        let mut f = Fields::default();
        event.record(&mut f);
        let level = match *event.metadata().level() {
            Level::ERROR => "error",
            Level::WARN => "warn",
            Level::INFO => "info",
            Level::DEBUG => "debug",
            Level::TRACE => "trace",
        };
        let mut line: serde_json::Map<String, serde_json::Value> = f
            .extra
            .into_iter()
            .map(|(k, v)| match v {
                serde_json::Value::String(s) => (k, (self.redact)(&s).into()),
                other => (k, other),
            })
            .collect();
        line.insert("@level".into(), level.into());
        line.insert("@message".into(), (self.redact)(&f.message).into());
        line.insert("@module".into(), self.module.as_str().into());
        line.insert("@timestamp".into(), ts.into());
        writeln!(writer, "{}", serde_json::Value::Object(line))
    }
}

/// Installs the stderr logger. The level follows TF_LOG_PROVIDER, then TF_LOG (as Terraform
/// does); without either, only warnings and errors are written. `redact` runs over every
/// message and field. `provider_type` names the lines' module; `crates` are the provider's
/// own crates, whose lines (and this crate's) are written at the requested level.
pub fn init(provider_type: &str, crates: &[&str], redact: Redact) {
    let level = std::env::var("TF_LOG_PROVIDER")
        .or_else(|_| std::env::var("TF_LOG"))
        .map(|l| match l.to_ascii_lowercase().as_str() {
            "trace" | "json" => Level::TRACE,
            "debug" => Level::DEBUG,
            "info" => Level::INFO,
            "error" => Level::ERROR,
            _ => Level::WARN,
        })
        .unwrap_or(Level::WARN);
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    // Our own lines at the requested level; libraries (TLS, HTTP/2) only when they warn.
    let filter = crates
        .iter()
        .chain([&env!("CARGO_CRATE_NAME")])
        .fold(tracing_subscriber::filter::Targets::new(), |f, c| {
            f.with_target(c.to_string(), level)
        })
        .with_default(Level::WARN);
    let _ = tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .event_format(HcLog {
                    redact,
                    module: format!("provider.{provider_type}"),
                }),
        )
        .with(filter)
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn every_message_and_field_passes_through_the_redaction() {
        use tracing_subscriber::layer::SubscriberExt;
        let sink = Sink::default();
        let writer = sink.clone();
        let subscriber = tracing_subscriber::registry().with(
            tracing_subscriber::fmt::layer()
                .with_writer(move || writer.clone())
                .event_format(HcLog {
                    redact: |s| s.replace("hunter22", "***"),
                    module: "provider.test".into(),
                }),
        );
        tracing::subscriber::with_default(subscriber, || {
            tracing::warn!(detail = "echo hunter22", status = 401, "answer hunter22");
        });
        let out = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
        let line: serde_json::Value = serde_json::from_str(out.trim()).expect("one JSON line");
        assert_eq!(line["@message"], "answer ***");
        assert_eq!(line["detail"], "echo ***");
        assert_eq!(line["@level"], "warn");
        assert!(!out.contains("hunter22"), "{out}");
    }
}
