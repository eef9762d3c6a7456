//! One simulated chat user: a WebSocket connection that creates or joins its room when
//! told, sends its share of the messages on its schedule, reads everything the gateway
//! pushes, and keeps its sender's and receiver's books until it is told to stop.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use serde::Deserialize;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::time::{sleep_until, timeout};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::ledger::{Answer, Delivery, ReceiverLedger, SenderLedger, Stamp};
use crate::progress::Counters;

pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Longest wait for one frame to be written (a gateway that stopped reading).
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest wait for the close handshake at the end.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);
/// Most sends per wake-up, so a burst never starves the reading.
const SENDS_PER_WAKE: usize = 64;

/// What the run tells a client to do.
pub enum Command {
    /// Create the client's room (a `conflict` means it exists: fine).
    CreateRoom(oneshot::Sender<Result<(), String>>),
    /// Join the client's room.
    Join(oneshot::Sender<Result<(), String>>),
    /// Start sending on this schedule.
    Send(Schedule),
    /// Send no more (the run was interrupted).
    StopSending,
    /// Close the connection and hand in the books.
    Stop,
}

/// When a sender sends.
#[derive(Debug, Clone)]
pub struct Schedule {
    pub first_slot: Instant,
    /// Zero: every slot at once (a burst).
    pub interval: Duration,
    /// Messages to send, or none for as many as the duration allows.
    pub quota: Option<u64>,
    /// No slot at or after this.
    pub until: Option<Instant>,
    /// Wait for room in the window instead of skipping the slot.
    pub wait_for_window: bool,
    pub window: usize,
    /// How many connections each of its messages must reach.
    pub audience: u64,
}

/// What every client of a run shares.
pub struct Context {
    pub run: String,
    pub rooms: usize,
    /// All clients are one signed-in user, and so in every room.
    pub shared_user: bool,
    pub text_bytes: usize,
    pub reply_timeout: Duration,
    pub keepalive: Duration,
    /// The run's clock: message stamps are microseconds since this.
    pub started: Instant,
    pub counters: Arc<Counters>,
}

impl Context {
    pub fn clock_us(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_micros()).unwrap_or(u64::MAX)
    }
}

/// Who a client is.
pub struct Identity {
    pub index: usize,
    pub room: usize,
    pub room_name: String,
}

/// The books a client hands in at the end.
pub struct Outcome {
    pub index: usize,
    pub sender: Option<SenderLedger>,
    pub receiver: ReceiverLedger,
    /// Why the connection ended before the run did.
    pub dropped: Option<String>,
}

/// The fields of server frames the client looks at (see docs/protocol.md).
#[derive(Deserialize)]
struct Incoming<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(default, borrow)]
    room: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    text: Option<Cow<'a, str>>,
    #[serde(default, rename = "clientMsgId", borrow)]
    client_msg_id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    code: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    action: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    event: Option<Cow<'a, str>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    CreateRoom,
    Join,
}

struct Client {
    identity: Identity,
    context: Arc<Context>,
    setup: Option<(Step, oneshot::Sender<Result<(), String>>)>,
    schedule: Option<Schedule>,
    sender: Option<SenderLedger>,
    next_slot: Option<Instant>,
    next_seq: u64,
    /// Waiting for room in the window.
    blocked: bool,
    done_sending: bool,
    receiver: ReceiverLedger,
    last_write: Instant,
    dropped: Option<String>,
}

/// Runs one client until `Stop` (or until its commands end).
pub async fn run(
    mut socket: Socket,
    identity: Identity,
    context: Arc<Context>,
    mut commands: mpsc::Receiver<Command>,
) -> Outcome {
    let mut client = Client {
        identity,
        context,
        setup: None,
        schedule: None,
        sender: None,
        next_slot: None,
        next_seq: 0,
        blocked: false,
        done_sending: false,
        receiver: ReceiverLedger::default(),
        last_write: Instant::now(),
        dropped: None,
    };
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let far = tokio::time::Instant::now() + Duration::from_secs(365 * 24 * 3600);
    loop {
        let slot = client.due_slot();
        tokio::select! {
            biased;
            command = commands.recv() => match command {
                None | Some(Command::Stop) => break,
                Some(command) => client.obey(&mut socket, command).await,
            },
            frame = socket.next() => match frame {
                Some(Ok(Message::Text(text))) => client.read(text.as_str()),
                Some(Ok(Message::Close(frame))) => {
                    let reason = frame.map_or_else(|| "no code".to_owned(), |f| format!("{} {}", u16::from(f.code), f.reason));
                    client.lose(format!("closed by the server ({reason})"));
                }
                Some(Ok(_)) => {}
                Some(Err(error)) => client.lose(format!("read failed: {error}")),
                None => client.lose("connection ended".to_owned()),
            },
            () = sleep_until(slot.map_or(far, tokio::time::Instant::from_std)), if slot.is_some() => {
                client.send_due(&mut socket).await;
            }
            _ = tick.tick() => client.housekeep(&mut socket).await,
        }
        if client.dropped.is_some() {
            break;
        }
    }
    if client.dropped.is_some() {
        // Answer the run's commands until it asks for the books.
        while let Some(command) = commands.recv().await {
            match command {
                Command::Stop => break,
                Command::CreateRoom(reply) | Command::Join(reply) => {
                    let _ = reply.send(Err("connection dropped".to_owned()));
                }
                Command::Send(_) | Command::StopSending => {}
            }
        }
    } else {
        let _ = timeout(CLOSE_TIMEOUT, socket.close(None)).await;
    }
    Outcome {
        index: client.identity.index,
        sender: client.sender,
        receiver: client.receiver,
        dropped: client.dropped,
    }
}

impl Client {
    fn counters(&self) -> &Counters {
        &self.context.counters
    }

    /// The next slot to wake for, unless waiting for the window.
    fn due_slot(&self) -> Option<Instant> {
        self.next_slot.filter(|_| !self.blocked)
    }

    async fn obey(&mut self, socket: &mut Socket, command: Command) {
        match command {
            Command::CreateRoom(reply) => {
                let frame = serde_json::json!({"action": "createRoom", "room": self.identity.room_name});
                self.setup = Some((Step::CreateRoom, reply));
                self.write(socket, Message::text(frame.to_string())).await;
            }
            Command::Join(reply) => {
                let frame = serde_json::json!({"action": "join", "room": self.identity.room_name});
                self.setup = Some((Step::Join, reply));
                self.write(socket, Message::text(frame.to_string())).await;
            }
            Command::Send(schedule) => {
                self.next_slot = Some(schedule.first_slot);
                self.sender = Some(SenderLedger::default());
                if schedule.quota == Some(0) {
                    self.schedule = Some(schedule);
                    self.finish_sending();
                } else {
                    self.schedule = Some(schedule);
                }
            }
            Command::StopSending => self.finish_sending(),
            Command::Stop => {}
        }
    }

    fn finish_sending(&mut self) {
        self.next_slot = None;
        self.blocked = false;
        if self.schedule.is_some() && !self.done_sending {
            self.done_sending = true;
            Counters::one(&self.counters().senders_done);
        }
    }

    /// Sends every slot that is due, up to [`SENDS_PER_WAKE`].
    async fn send_due(&mut self, socket: &mut Socket) {
        let now = Instant::now();
        for _ in 0..SENDS_PER_WAKE {
            let (Some(slot), Some(schedule)) = (self.next_slot, self.schedule.as_ref()) else {
                return;
            };
            if slot > now {
                return;
            }
            let ended = schedule.until.is_some_and(|until| slot >= until)
                || schedule.quota.is_some_and(|quota| self.next_seq >= quota);
            if ended {
                self.finish_sending();
                return;
            }
            let (interval, window, wait) = (schedule.interval, schedule.window, schedule.wait_for_window);
            let ledger = self.sender.get_or_insert_with(SenderLedger::default);
            if ledger.awaiting() >= window {
                if wait {
                    self.blocked = true;
                    return;
                }
                ledger.skipped += 1;
                Counters::one(&self.context.counters.skipped);
                self.next_slot = Some(slot + interval);
                continue;
            }
            let seq = self.next_seq;
            self.next_seq += 1;
            let stamp = Stamp {
                sender: self.identity.index,
                seq,
                sent_us: self.context.clock_us(),
            };
            let frame = serde_json::json!({
                "action": "send",
                "room": self.identity.room_name,
                "text": stamp.text(&self.context.run, self.context.text_bytes),
                "clientMsgId": seq.to_string(),
            });
            ledger.record_send(seq, Instant::now());
            Counters::one(&self.context.counters.sent);
            Counters::one(&self.context.counters.awaiting);
            self.next_slot = Some(slot + interval);
            self.write(socket, Message::text(frame.to_string())).await;
            if self.dropped.is_some() {
                return;
            }
        }
    }

    /// Writes one frame, or drops the connection if it cannot.
    async fn write(&mut self, socket: &mut Socket, message: Message) {
        match timeout(WRITE_TIMEOUT, socket.send(message)).await {
            Ok(Ok(())) => self.last_write = Instant::now(),
            Ok(Err(error)) => self.lose(format!("write failed: {error}")),
            Err(_) => self.lose(format!("write took over {WRITE_TIMEOUT:?}")),
        }
    }

    /// Once a second: sends past the reply timeout leave the window; a ping keeps an
    /// otherwise quiet connection from the idle timeout.
    async fn housekeep(&mut self, socket: &mut Socket) {
        let now = Instant::now();
        if let Some(ledger) = self.sender.as_mut() {
            let moved = ledger.expire(now, self.context.reply_timeout);
            Counters::add(&self.context.counters.overdue, moved as u64);
        }
        self.unblock();
        if now.duration_since(self.last_write) >= self.context.keepalive {
            self.write(socket, Message::Ping(Vec::new().into())).await;
        }
    }

    /// Resumes a sender that waited for room in its window; the schedule moves on from now.
    fn unblock(&mut self) {
        let (Some(ledger), Some(schedule)) = (self.sender.as_ref(), self.schedule.as_ref()) else {
            return;
        };
        if self.blocked && ledger.awaiting() < schedule.window {
            self.blocked = false;
            let now = Instant::now();
            self.next_slot = self.next_slot.map(|slot| slot.max(now));
        }
    }

    fn lose(&mut self, reason: String) {
        if self.dropped.is_none() {
            Counters::one(&self.counters().dropped);
            self.dropped = Some(reason.clone());
        }
        if let Some((_, reply)) = self.setup.take() {
            let _ = reply.send(Err(reason));
        }
        self.finish_sending();
    }

    /// One text frame from the gateway.
    fn read(&mut self, text: &str) {
        let Ok(frame) = serde_json::from_str::<Incoming>(text) else {
            *self.receiver.other.entry("(not a JSON frame)".to_owned()).or_default() += 1;
            return;
        };
        match frame.kind.as_ref() {
            "message" => self.delivered(frame.text.as_deref()),
            "presence" => {
                let event = frame.event.as_deref().unwrap_or("?");
                *self.receiver.presence.entry(event.to_owned()).or_default() += 1;
                Counters::one(&self.counters().presence);
                Counters::at_least(&self.counters().last_presence_us, self.context.clock_us());
            }
            "ack" => {
                let seq = frame.client_msg_id.as_deref().and_then(|id| id.parse::<u64>().ok());
                let answer = match (seq, self.sender.as_mut()) {
                    (Some(seq), Some(ledger)) => ledger.record_ack(seq, Instant::now()),
                    _ => Answer::Unexpected,
                };
                if self.answered(answer) {
                    Counters::one(&self.counters().acked);
                    let audience = self.schedule.as_ref().map_or(0, |schedule| schedule.audience);
                    Counters::add(&self.counters().expected, audience);
                } else {
                    *self.receiver.other.entry("ack (unexpected)".to_owned()).or_default() += 1;
                }
            }
            "error" => {
                let code = frame.code.as_deref().unwrap_or("?");
                match frame.action.as_deref() {
                    Some("send") => {
                        let answer = self
                            .sender
                            .as_mut()
                            .map_or(Answer::Unexpected, |ledger| ledger.record_refusal(code));
                        if self.answered(answer) {
                            Counters::one(&self.counters().refused);
                        } else {
                            *self
                                .receiver
                                .other
                                .entry(format!("error {code} (unexpected)"))
                                .or_default() += 1;
                        }
                    }
                    Some("createRoom") if code == "conflict" => self.settle(Step::CreateRoom, Ok(())),
                    Some(action @ ("createRoom" | "join")) => {
                        let step = if action == "join" { Step::Join } else { Step::CreateRoom };
                        // The code alone, so that failures tally (messages name the room).
                        self.settle(step, Err(code.to_owned()));
                    }
                    _ => *self.receiver.other.entry(format!("error {code}")).or_default() += 1,
                }
            }
            "roomCreated" => self.settle(Step::CreateRoom, Ok(())),
            "joined" if frame.room.as_deref() == Some(self.identity.room_name.as_str()) => {
                self.settle(Step::Join, Ok(()))
            }
            other => *self.receiver.other.entry(other.to_owned()).or_default() += 1,
        }
    }

    /// Books the first answer to a send; false if it answered nothing of ours.
    fn answered(&mut self, answer: Answer) -> bool {
        match answer {
            Answer::First { late } => {
                Counters::less(&self.context.counters.awaiting);
                if late {
                    Counters::less(&self.context.counters.overdue);
                }
                self.unblock();
                true
            }
            Answer::Unexpected => false,
        }
    }

    fn settle(&mut self, step: Step, result: Result<(), String>) {
        match self.setup.take() {
            Some((pending, reply)) if pending == step => {
                let _ = reply.send(result);
            }
            other => {
                self.setup = other;
                let kind = if step == Step::Join { "joined" } else { "roomCreated" };
                *self.receiver.other.entry(format!("{kind} (unasked)")).or_default() += 1;
            }
        }
    }

    fn delivered(&mut self, text: Option<&str>) {
        let Some(stamp) = text.and_then(|text| Stamp::read(text, &self.context.run)) else {
            self.receiver.foreign += 1;
            return;
        };
        let own_room = self.context.shared_user || stamp.sender % self.context.rooms == self.identity.room;
        if stamp.sender == self.identity.index || !own_room {
            self.receiver.misrouted += 1;
            Counters::one(&self.counters().misrouted);
            return;
        }
        match self.receiver.record(stamp, self.context.clock_us()) {
            Delivery::First => Counters::one(&self.counters().delivered),
            Delivery::Duplicate => Counters::one(&self.counters().duplicated),
        }
    }
}
