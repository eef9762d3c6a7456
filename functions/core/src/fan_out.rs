//! Fan-out of a batch of event-log records to connections: what the Kafka-triggered
//! function does with each batch, and what the local gateway does with its in-process log.
//!
//! The rules, each for a reason:
//! - one member lookup per distinct target per batch, because a busy room has many
//!   records in a batch and the lookup is the expensive part;
//! - every lookup happens before the first post, so a store failure fails the batch
//!   before anyone received anything (a failed batch is redelivered whole);
//! - posts run concurrently across connections, but each connection's frames go one after
//!   the other in offset order, so a room's messages arrive in order;
//! - a gone connection is forgotten as if it had disconnected (its user's rooms hear it go
//!   offline); a throttled or failing one is retried with backoff and then given up for
//!   this batch. Neither fails the batch, which would duplicate every frame to every other
//!   recipient;
//! - a frame with a `maxAudience` (presence) is dropped when its audience is larger;
//! - a chat record's `message` or `dm` gets the id its log position names, as the archive
//!   and the sender's `ack` derive it (docs/protocol.md, "One order"); a direct
//!   conversation's record reaches both users, each told the other as `with`.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use bytes::Bytes;

use futures::stream::{self, StreamExt};

use crate::backoff::backoff;
use crate::config::Config;
use crate::envelope::{Envelope, Target};
use crate::model::{ConnectionId, RoomName, UserId};
use crate::ports::{Audience, Notifier, NotifyError, Publisher, Store, StoreError};
use crate::session;

pub use crate::record::Record;

#[derive(Debug, Clone)]
pub struct FanOutConfig {
    /// Posts in flight at once. The default, 200, reaches a 10,000-member room in about a
    /// second when a post takes 20 ms (API Gateway's usual round trip from Lambda): 200 / 20
    /// ms is 10,000 posts/s, the account's default PostToConnection quota, so one
    /// invocation can use all of it; invocations running at once share it, and the posts
    /// it throttles (429) are retried with backoff.
    pub concurrency: usize,
    /// Tries per frame when a post is throttled or fails temporarily.
    pub attempts: u32,
    /// First backoff; doubled each retry, with jitter.
    pub backoff: Duration,
    /// Longest wait for one post.
    pub post_timeout: Duration,
    /// Tries per member lookup before the batch fails.
    pub lookup_attempts: u32,
    /// The rules of the domain: the broadcast room, presence.
    pub domain: Config,
}

impl Default for FanOutConfig {
    fn default() -> Self {
        Self {
            concurrency: 200,
            attempts: 4,
            backoff: Duration::from_millis(100),
            post_timeout: Duration::from_secs(5),
            lookup_attempts: 3,
            domain: Config::default(),
        }
    }
}

/// What a batch did, for logs and benchmarks.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FanOutReport {
    pub records: usize,
    /// Records that were not valid envelopes, skipped (and logged).
    pub skipped: usize,
    /// Distinct member lookups made.
    pub lookups: usize,
    /// Frames posted successfully.
    pub delivered: usize,
    /// Connections found gone and removed.
    pub gone: usize,
    /// Frames dropped because their connection kept failing or refused them.
    pub dropped: usize,
    /// Records not delivered because their audience exceeded their `maxAudience`.
    pub quieted: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum FanOutError {
    #[error("could not look up the audience of {audience}")]
    Lookup {
        audience: String,
        #[source]
        source: StoreError,
    },
}

/// Whose connections a record goes to; one lookup each per batch.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Recipients {
    Room(RoomName),
    /// The broadcast room and `{all: true}`: every connection in any room.
    Everyone,
    User(UserId),
    Connection(ConnectionId),
}

impl Recipients {
    /// Whose connections get the record, each with the user the frame must name as
    /// `with` (the other side of a direct conversation), if any.
    fn of(target: &Target, domain: &Config) -> Vec<(Self, Option<UserId>)> {
        let one = match target {
            Target::Room(room) if domain.is_broadcast(room.as_str()) => Recipients::Everyone,
            Target::Room(room) => Recipients::Room(room.clone()),
            Target::All => Recipients::Everyone,
            Target::User(user) => Recipients::User(user.clone()),
            Target::Connection(id) => Recipients::Connection(id.clone()),
            Target::Direct(a, b) if a == b => return vec![(Recipients::User(a.clone()), Some(a.clone()))],
            Target::Direct(a, b) => {
                return vec![
                    (Recipients::User(a.clone()), Some(b.clone())),
                    (Recipients::User(b.clone()), Some(a.clone())),
                ]
            }
        };
        vec![(one, None)]
    }

    fn describe(&self) -> String {
        match self {
            Recipients::Room(room) => format!("room {room}"),
            Recipients::Everyone => "the broadcast audience".to_owned(),
            Recipients::User(user) => format!("user {user}"),
            Recipients::Connection(id) => format!("connection {id}"),
        }
    }

    async fn look_up<S: Audience + ?Sized>(&self, store: &S) -> Result<Vec<ConnectionId>, StoreError> {
        match self {
            Recipients::Room(room) => store.room_audience(room).await,
            Recipients::Everyone => store.broadcast_audience().await,
            Recipients::User(user) => store.user_audience(user).await,
            Recipients::Connection(id) => Ok(vec![id.clone()]),
        }
    }
}

/// Fans a batch out. `publisher` carries what the batch causes: the presence of users
/// whose connections turned out to be gone.
pub async fn fan_out<S, P, N>(
    store: &S,
    publisher: &P,
    notifier: &N,
    config: &FanOutConfig,
    mut records: Vec<Record>,
) -> Result<FanOutReport, FanOutError>
where
    S: Store + ?Sized,
    P: Publisher + ?Sized,
    N: Notifier + ?Sized,
{
    let mut report = FanOutReport {
        records: records.len(),
        ..FanOutReport::default()
    };
    records.sort_by(|a, b| (&a.topic, a.partition, a.offset).cmp(&(&b.topic, b.partition, b.offset)));

    // Each record's frame, as its receivers get it, and for whom.
    let mut envelopes = Vec::with_capacity(records.len());
    for record in &records {
        match Envelope::decode(&record.value) {
            Ok(envelope) => {
                let frame = envelope.frame_at(record.position()).into_owned();
                for (audience, with) in Recipients::of(&envelope.target, &config.domain) {
                    envelopes.push((envelope.clone(), audience, for_side(&frame, with.as_ref())));
                }
            }
            Err(error) => {
                report.skipped += 1;
                tracing::warn!(%error, topic = %record.topic, partition = record.partition, offset = record.offset, "skipping record");
            }
        }
    }

    let wanted: Vec<&Recipients> = envelopes
        .iter()
        .map(|(_, audience, _)| audience)
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    report.lookups = wanted
        .iter()
        .filter(|a| !matches!(a, Recipients::Connection(_)))
        .count();
    // Streams over indices, not references: a closure over `&T` is higher-ranked, and the
    // compiler then cannot prove the whole future `Send` (rust-lang/rust#102211).
    let wanted = &wanted;
    let audiences: HashMap<&Recipients, Vec<ConnectionId>> = stream::iter(0..wanted.len())
        .map(|index| async move { (wanted[index], look_up_with_retry(store, config, wanted[index]).await) })
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .map(|(audience, found)| found.map(|ids| (audience, ids)))
        .collect::<Result<_, _>>()?;

    // Each connection's frames, in record order. `order` keeps the posting order stable.
    let mut queues: HashMap<&ConnectionId, Vec<Bytes>> = HashMap::new();
    let mut order: Vec<&ConnectionId> = Vec::new();
    for (envelope, audience, frame) in &envelopes {
        let ids = &audiences[audience];
        if envelope.max_audience.is_some_and(|max| ids.len() > max) {
            report.quieted += 1;
            continue;
        }
        for id in ids {
            if envelope.except.as_ref() == Some(id) {
                continue;
            }
            queues
                .entry(id)
                .or_insert_with(|| {
                    order.push(id);
                    Vec::new()
                })
                .push(frame.clone());
        }
    }

    let (order, queues) = (&order, &queues);
    let outcomes: Vec<Delivery> = stream::iter(0..order.len())
        .map(|index| deliver(store, publisher, notifier, config, order[index], &queues[order[index]]))
        .buffer_unordered(config.concurrency.max(1))
        .collect()
        .await;
    for outcome in outcomes {
        report.delivered += outcome.delivered;
        report.dropped += outcome.dropped;
        report.gone += usize::from(outcome.gone);
    }
    tracing::info!(?report, "batch fanned out");
    Ok(report)
}

/// The frame for one side of a direct conversation: an `edited` or `deleted` names the
/// other user as `with`; anything else, and any frame of a room, goes as it is. One copy
/// per record and side, shared by every member's post (a `Bytes` clone is a count).
fn for_side(frame: &str, with: Option<&UserId>) -> Bytes {
    match with {
        Some(with) if frame.starts_with(r#"{"type":"edited","#) || frame.starts_with(r#"{"type":"deleted","#) => {
            let with = serde_json::to_string(with.as_str()).expect("strings always serialise");
            Bytes::from(crate::envelope::with_field(frame, "with", &with))
        }
        _ => Bytes::copy_from_slice(frame.as_bytes()),
    }
}

async fn look_up_with_retry<S: Audience + ?Sized>(
    store: &S,
    config: &FanOutConfig,
    audience: &Recipients,
) -> Result<Vec<ConnectionId>, FanOutError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match audience.look_up(store).await {
            Ok(ids) => return Ok(ids),
            Err(source) if attempt >= config.lookup_attempts => {
                return Err(FanOutError::Lookup {
                    audience: audience.describe(),
                    source,
                });
            }
            Err(error) => {
                tracing::warn!(error = &error as &dyn std::error::Error, audience = %audience.describe(), attempt, "lookup failed; retrying");
                tokio::time::sleep(backoff(config.backoff, attempt)).await;
            }
        }
    }
}

#[derive(Default)]
struct Delivery {
    delivered: usize,
    dropped: usize,
    gone: bool,
}

/// Posts one connection's frames in order.
async fn deliver<S, P, N>(
    store: &S,
    publisher: &P,
    notifier: &N,
    config: &FanOutConfig,
    id: &ConnectionId,
    frames: &[Bytes],
) -> Delivery
where
    S: Store + ?Sized,
    P: Publisher + ?Sized,
    N: Notifier + ?Sized,
{
    let mut outcome = Delivery::default();
    for (index, frame) in frames.iter().enumerate() {
        match post_with_retry(notifier, config, id, frame).await {
            Ok(()) => outcome.delivered += 1,
            Err(NotifyError::Gone) => {
                outcome.gone = true;
                outcome.dropped += frames.len() - index;
                // If this fails the items still expire by TTL; the batch goes on either way.
                match session::disconnect(store, publisher, &config.domain, id).await {
                    Ok(_) => tracing::info!(connection_id = %id, "connection gone; removed"),
                    Err(error) => {
                        tracing::warn!(error = &error as &dyn std::error::Error, connection_id = %id, "connection gone; removal failed")
                    }
                }
                break;
            }
            Err(error @ NotifyError::Retryable(_)) => {
                outcome.dropped += frames.len() - index;
                tracing::warn!(error = &error as &dyn std::error::Error, connection_id = %id, dropped = frames.len() - index, "connection keeps failing; given up for this batch");
                break;
            }
            Err(error @ NotifyError::Failed(_)) => {
                outcome.dropped += 1;
                tracing::warn!(error = &error as &dyn std::error::Error, connection_id = %id, "frame refused; skipped");
            }
        }
    }
    outcome
}

async fn post_with_retry<N: Notifier + ?Sized>(
    notifier: &N,
    config: &FanOutConfig,
    id: &ConnectionId,
    frame: &Bytes,
) -> Result<(), NotifyError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let result = match tokio::time::timeout(config.post_timeout, notifier.send_shared(id, frame)).await {
            Ok(result) => result,
            Err(elapsed) => Err(NotifyError::Retryable(Box::new(elapsed))),
        };
        match result {
            Err(NotifyError::Retryable(error)) if attempt < config.attempts => {
                // Worth seeing: a post that got no answer may have been delivered, and its
                // retry then shows the frame twice (clients de-duplicate by id).
                tracing::warn!(error = &*error as &dyn std::error::Error, connection_id = %id, attempt, "post failed; retrying");
                tokio::time::sleep(backoff(config.backoff, attempt)).await;
            }
            other => return other,
        }
    }
}
