//! What a connect logs: one `connect` span with an id and the (bounded) targets, and one summary
//! event when it ends, at DEBUG like hyper-util's and reqwest's connect logs.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};

use connect_by_list::Connector;
use support::loopback::{live, Refused};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

/// A span or an event as the subscriber saw it.
#[derive(Clone, Debug, Default)]
struct Record {
    name: String,
    level: String,
    fields: BTreeMap<String, String>,
    /// For events: the name and fields of the span they were emitted in.
    parent: Option<(String, BTreeMap<String, String>)>,
}

impl Visit for Record {
    fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
        self.fields
            .insert(field.name().to_owned(), format!("{value:?}"));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.fields
            .insert(field.name().to_owned(), value.to_owned());
    }
}

#[derive(Clone, Default)]
struct Captured {
    spans: Arc<Mutex<Vec<Record>>>,
    events: Arc<Mutex<Vec<Record>>>,
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Captured {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut record = Record {
            name: attrs.metadata().name().to_owned(),
            level: attrs.metadata().level().to_string(),
            ..Record::default()
        };
        attrs.record(&mut record);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(record.clone());
        }
        self.spans.lock().unwrap().push(record);
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut record = Record {
            name: event.metadata().name().to_owned(),
            level: event.metadata().level().to_string(),
            ..Record::default()
        };
        event.record(&mut record);
        record.parent = ctx.event_span(event).and_then(|span| {
            let extensions = span.extensions();
            let parent = extensions.get::<Record>()?;
            Some((parent.name.clone(), parent.fields.clone()))
        });
        self.events.lock().unwrap().push(record);
    }
}

/// Runs `work` on one thread with a subscriber that keeps everything at DEBUG and above.
fn capture<T>(work: impl std::future::Future<Output = T>) -> (T, Captured) {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::registry().with(
        captured
            .clone()
            .with_filter(tracing_subscriber::filter::LevelFilter::DEBUG),
    );
    let output = tracing::subscriber::with_default(subscriber, || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(work)
    });
    (output, captured)
}

fn connect_spans(captured: &Captured) -> Vec<Record> {
    let spans = captured.spans.lock().unwrap();
    spans
        .iter()
        .filter(|span| span.name == "connect")
        .cloned()
        .collect()
}

fn summaries_of(captured: &Captured) -> Vec<Record> {
    let events = captured.events.lock().unwrap();
    events
        .iter()
        .filter(|event| {
            matches!(
                event.fields.get("message").map(String::as_str),
                Some("connected" | "connect failed")
            )
        })
        .cloned()
        .collect()
}

const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

#[test]
fn a_connect_has_one_span_and_one_summary() {
    let ((refused, live_addr, connection), captured) = capture(async {
        let refused = Refused::new(LOOPBACK).unwrap();
        let live_addr = live(LOOPBACK).await.unwrap();
        let connector = Connector::builder()
            .sort_addresses(false)
            .history_capacity(0)
            .build()
            .unwrap();
        let connection = connector
            .connect([refused.addr(), live_addr])
            .await
            .unwrap();
        (refused.addr(), live_addr, connection)
    });
    assert_eq!(connection.peer_addr(), live_addr);

    let spans = connect_spans(&captured);
    assert_eq!(spans.len(), 1, "{spans:?}");
    let span = &spans[0];
    assert_eq!(span.level, "DEBUG");
    let id: u64 = span.fields["id"].parse().expect("a numeric connect id");
    assert!(id >= 1);
    assert_eq!(span.fields["targets"], format!("{refused}, {live_addr}"));

    let summaries = summaries_of(&captured);
    assert_eq!(summaries.len(), 1, "{summaries:?}");
    let summary = &summaries[0];
    assert_eq!(summary.level, "DEBUG");
    assert_eq!(summary.fields["message"], "connected");
    assert_eq!(summary.fields["winner"], live_addr.to_string());
    assert_eq!(summary.fields["attempts"], "2");
    assert!(summary.fields["elapsed"].ends_with("ms"), "{summary:?}");
    let (parent, parent_fields) = summary.parent.as_ref().expect("inside the connect span");
    assert_eq!(parent, "connect");
    assert_eq!(parent_fields["id"], id.to_string());

    // Each attempt's start and end, at DEBUG, inside the span, with structured fields: `local`
    // only when bound (never here), `error` only for the refused one.
    let events = captured.events.lock().unwrap();
    let of = |message: &str| -> Vec<&Record> {
        events
            .iter()
            .filter(|event| event.fields.get("message").map(String::as_str) == Some(message))
            .collect()
    };
    let started = of("attempt started");
    assert_eq!(started.len(), 2, "{started:?}");
    assert_eq!(started[0].fields["remote"], refused.to_string());
    assert_eq!(started[0].fields["at"], "0ms");
    assert_eq!(started[1].fields["remote"], live_addr.to_string());
    let ended = of("attempt ended");
    assert_eq!(ended.len(), 2, "{ended:?}");
    assert_eq!(ended[0].fields["outcome"], "refused");
    assert!(ended[0].fields.contains_key("error"), "{:?}", ended[0]);
    assert_eq!(ended[1].fields["outcome"], "connected");
    assert!(!ended[1].fields.contains_key("error"), "{:?}", ended[1]);
    for event in started.iter().chain(&ended) {
        assert_eq!(event.level, "DEBUG");
        assert!(!event.fields.contains_key("local"), "{event:?}");
        assert!(!event.fields.contains_key("host"), "{event:?}");
        assert_eq!(event.parent.as_ref().map(|p| p.0.as_str()), Some("connect"));
    }

    // Nothing at INFO or above for a connect that worked.
    assert!(!events.is_empty());
    let loud: Vec<_> = events
        .iter()
        .filter(|event| !matches!(event.level.as_str(), "DEBUG" | "TRACE"))
        .collect();
    assert!(loud.is_empty(), "{loud:?}");
}

#[test]
fn a_failed_connect_summarizes_its_error_kind() {
    let (error, captured) = capture(async {
        let refused = Refused::new(LOOPBACK).unwrap();
        Connector::new().connect(refused.addr()).await.unwrap_err()
    });
    let summaries = summaries_of(&captured);
    assert_eq!(summaries.len(), 1, "{summaries:?}");
    let summary = &summaries[0];
    assert_eq!(summary.fields["message"], "connect failed");
    assert_eq!(summary.fields["kind"], "AllFailed");
    assert_eq!(summary.fields["attempts"], "1");
    assert_eq!(summary.fields["error"], error.to_string());

    let (_, captured) = capture(async { Connector::new().connect("no-port").await });
    let invalid = summaries_of(&captured);
    assert_eq!(invalid.len(), 1, "{invalid:?}");
    assert_eq!(invalid[0].fields["kind"], "InvalidTarget");
    assert_eq!(invalid[0].fields["attempts"], "0");
}

/// Every connect gets its own id, and a long list is cut to its first few targets.
#[test]
fn ids_differ_and_long_lists_are_bounded() {
    let (_, captured) = capture(async {
        let refused = Refused::new(LOOPBACK).unwrap();
        let connector = Connector::builder().sort_addresses(false).build().unwrap();
        let many = vec![refused.addr(); 10];
        let _ = connector.connect(many).await;
        let _ = connector.connect(refused.addr()).await;
    });
    let spans = connect_spans(&captured);
    assert_eq!(spans.len(), 2, "{spans:?}");
    assert_ne!(spans[0].fields["id"], spans[1].fields["id"]);
    let targets = &spans[0].fields["targets"];
    assert!(targets.ends_with(" (+6 more)"), "{targets}");
    assert_eq!(targets.matches(", ").count(), 3, "{targets}");
    assert_eq!(summaries_of(&captured).len(), 2);
}

/// A URI refused before any connect (hyper's path) is logged like a connect: its span, and one
/// summary with the kind.
#[cfg(feature = "hyper")]
#[test]
fn a_refused_uri_is_one_span_and_one_summary() {
    use tower_service::Service;
    let (result, captured) = capture(async {
        let mut connector = Connector::new();
        connector
            .call("ftp://files.example/".parse().unwrap())
            .await
            .map(|_| ())
    });
    let error = result.unwrap_err();
    let spans = connect_spans(&captured);
    assert_eq!(spans.len(), 1, "{spans:?}");
    assert_eq!(spans[0].fields["targets"], "invalid");
    assert!(spans[0].fields.contains_key("id"), "{spans:?}");
    let summaries = summaries_of(&captured);
    assert_eq!(summaries.len(), 1, "{summaries:?}");
    assert_eq!(summaries[0].fields["kind"], "InvalidTarget");
    assert_eq!(summaries[0].fields["error"], error.to_string());
}
