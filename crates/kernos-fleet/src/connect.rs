//! One connection to the broker, made the same way by nodes and controllers.

use std::path::PathBuf;
use std::time::Duration;

use async_nats::jetstream;

use crate::subject::Names;
use crate::{FleetError, Result};

/// Where the broker is and how to prove who we are.
#[derive(Debug, Clone, Default)]
pub struct BrokerConfig {
    /// `nats://host:4222` (or `tls://…`).
    pub url: String,
    /// A NATS credentials file (user JWT and NKEY seed), for operator-mode brokers.
    pub creds: Option<PathBuf>,
    /// A file holding a user NKEY seed (`SU…`), for brokers that list users' public keys.
    pub nkey: Option<PathBuf>,
    /// Require TLS, trusting this CA certificate (PEM) besides the system's.
    pub tls_ca: Option<PathBuf>,
    /// Require TLS even without a CA of our own.
    pub tls: bool,
    /// The organisation whose fleet this is.
    pub org: String,
    /// How this client names itself to the broker (shown in its monitoring).
    pub client_name: String,
}

/// A connection: the client, its JetStream context and the organisation's names.
#[derive(Debug, Clone)]
pub struct Broker {
    /// The NATS client (reconnects by itself).
    pub client: async_nats::Client,
    /// JetStream over it.
    pub js: jetstream::Context,
    /// The organisation's subjects, streams and bucket.
    pub names: Names,
}

/// Connects, retrying while the broker is not up yet and reconnecting for ever after a loss
/// (a node must come back by itself after a partition or a broker restart).
pub async fn connect(cfg: &BrokerConfig) -> Result<Broker> {
    let names = Names::new(&cfg.org)?;
    let mut opts = async_nats::ConnectOptions::new()
        .name(&cfg.client_name)
        .retry_on_initial_connect()
        .max_reconnects(None)
        .connection_timeout(Duration::from_secs(5))
        // Back off to at most 2 s: a partitioned node should catch up soon after it heals.
        .reconnect_delay_callback(|attempts| {
            Duration::from_millis((attempts as u64 * 100).min(2000))
        });
    if let Some(path) = &cfg.creds {
        opts = opts
            .credentials_file(path)
            .await
            .map_err(|e| FleetError::Credentials {
                path: path.display().to_string(),
                why: e.to_string(),
            })?;
    }
    if let Some(path) = &cfg.nkey {
        let seed = std::fs::read_to_string(path).map_err(|e| FleetError::Credentials {
            path: path.display().to_string(),
            why: e.to_string(),
        })?;
        opts = opts.nkey(seed.trim().to_owned());
    }
    if let Some(ca) = &cfg.tls_ca {
        opts = opts.add_root_certificates(ca.clone()).require_tls(true);
    } else if cfg.tls {
        opts = opts.require_tls(true);
    }
    let client = opts
        .connect(cfg.url.as_str())
        .await
        .map_err(|e| FleetError::Connect {
            url: cfg.url.clone(),
            why: e.to_string(),
        })?;
    let js = jetstream::new(client.clone());
    Ok(Broker { client, js, names })
}

impl Broker {
    /// The organisation's streams and bucket, created when missing (idempotent: every node
    /// and controller calls it on start, and keeps the bucket it returns). Both streams are file-stored, so a broker restart
    /// loses neither a plan not yet taken nor a result not yet read.
    pub async fn ensure(&self) -> Result<jetstream::kv::Store> {
        use jetstream::stream::{Config, RetentionPolicy, StorageType};
        let n = &self.names;
        self.js
            .get_or_create_stream(Config {
                name: n.plans_stream(),
                subjects: vec![n.plans()],
                storage: StorageType::File,
                // A plan leaves the stream when its node acknowledges it.
                retention: RetentionPolicy::WorkQueue,
                // The same dispatch published twice (a controller retrying) is stored once.
                duplicate_window: Duration::from_secs(120),
                max_age: Duration::from_secs(7 * 24 * 3600),
                ..Default::default()
            })
            .await
            .map_err(|e| FleetError::broker(format!("stream {}", n.plans_stream()), e))?;
        self.js
            .get_or_create_stream(Config {
                name: n.results_stream(),
                subjects: vec![n.results()],
                storage: StorageType::File,
                retention: RetentionPolicy::Limits,
                duplicate_window: Duration::from_secs(120),
                max_age: Duration::from_secs(7 * 24 * 3600),
                ..Default::default()
            })
            .await
            .map_err(|e| FleetError::broker(format!("stream {}", n.results_stream()), e))?;
        self.nodes().await
    }

    /// The inventory bucket (created when missing).
    pub async fn nodes(&self) -> Result<jetstream::kv::Store> {
        let bucket = self.names.nodes_bucket();
        if let Ok(kv) = self.js.get_key_value(&bucket).await {
            return Ok(kv);
        }
        // The bucket's stream, made the way the KV protocol defines it, rather than with
        // `create_key_value`: that asks for account info first, which this client cannot read
        // from nats-server 2.9 (Debian 12's), while the stream itself works there.
        use jetstream::stream::{Config, DiscardPolicy, StorageType};
        self.js
            .get_or_create_stream(Config {
                name: format!("KV_{bucket}"),
                subjects: vec![format!("$KV.{bucket}.>")],
                max_messages_per_subject: 1,
                storage: StorageType::File,
                discard: DiscardPolicy::New,
                allow_rollup: true,
                deny_delete: true,
                allow_direct: true,
                ..Default::default()
            })
            .await
            .map_err(|e| FleetError::broker(format!("bucket {bucket}"), e))?;
        self.js
            .get_key_value(&bucket)
            .await
            .map_err(|e| FleetError::broker(format!("bucket {bucket}"), e))
    }

    /// Messages of the durable pull consumer `durable` on `stream` (created when missing),
    /// with idle heartbeats: a stream that stops hearing them errs instead of waiting for
    /// ever, and callers consume again (after a partition, a reconnect, a broker restart).
    pub(crate) async fn consume(
        &self,
        stream: &str,
        durable: &str,
        filter: String,
        deliver: jetstream::consumer::DeliverPolicy,
        ack_wait: Duration,
    ) -> Result<jetstream::consumer::pull::Stream> {
        use jetstream::consumer::{AckPolicy, pull};
        let s = self
            .js
            .get_stream(stream)
            .await
            .map_err(|e| FleetError::broker(format!("stream {stream}"), e))?;
        let consumer = s
            .get_or_create_consumer(
                durable,
                pull::Config {
                    durable_name: Some(durable.to_owned()),
                    filter_subject: filter,
                    ack_policy: AckPolicy::Explicit,
                    deliver_policy: deliver,
                    ack_wait,
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| FleetError::broker(format!("consumer {durable}"), e))?;
        consumer
            .stream()
            .heartbeat(Duration::from_secs(2))
            .expires(Duration::from_secs(10))
            .messages()
            .await
            .map_err(|e| FleetError::broker(format!("messages of {durable}"), e))
    }

    /// Publishes `body` to `subject` in JetStream and waits for the broker to store it;
    /// `id` deduplicates a republish within the stream's window.
    pub async fn publish(&self, subject: String, id: &str, body: Vec<u8>) -> Result<()> {
        let publish = jetstream::message::PublishMessage::build()
            .message_id(id)
            .payload(body.into());
        let ack = self
            .js
            .send_publish(subject.clone(), publish)
            .await
            .map_err(|e| FleetError::broker(format!("publish to {subject}"), e))?;
        ack.await
            .map_err(|e| FleetError::broker(format!("publish to {subject}"), e))?;
        Ok(())
    }
}
