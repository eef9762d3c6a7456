//! HTTP and WebSocket in one room: a message POSTed over HTTP reaches WebSocket members
//! and one sent over WebSocket is read by polling `after`, which never skips nor repeats a
//! message even while several senders write at once; and every reader shares one order.

use std::collections::BTreeSet;

use roomcast_local::Running;
use roomcast_tests::each_backend;
use roomcast_tests::gateways::{gateway, Mode};
use roomcast_tests::http_client::HttpApi as Api;
use roomcast_tests::http_client::{PAGE_PAUSE, PAGE_WAIT};
use roomcast_tests::ws_client::Client;
use serde_json::json;

use super::{has_id, ids, is_message};

each_backend!(
    embedded => gateway(Mode::Embedded).await,
    real => gateway(Mode::Real).await;
    [
        http_messages_reach_websocket_members_and_polling_reads_theirs,
        polling_after_never_skips_nor_repeats_under_concurrent_senders,
        websocket_history_after_polling_never_skips_under_concurrent_senders,
        room_messages_arrive_live_in_ascending_id_order,
        one_order_for_members_history_catch_up_and_pollers,
    ]
);

async fn http_messages_reach_websocket_members_and_polling_reads_theirs(gateway: Running) {
    let api = Api::of(&gateway);
    let hugh = api.dev_token("hugh", &[]).await;
    let mut wanda = Client::connect(&gateway, "wanda").await;
    let mut walt = Client::connect(&gateway, "walt").await;
    let walt_id = walt.whoami().await["userId"].clone();
    wanda.join("general").await;
    walt.join("general").await;
    // Vera is in another room only.
    let mut vera = Client::connect(&gateway, "vera").await;
    vera.join("random").await;

    let joined = api
        .call("PUT", "/api/rooms/general/members/me", Some(&hugh), None)
        .await;
    assert_eq!(joined.status, 200, "{joined:?}");
    // The room hears of it as of any member.
    let (_, presence) = wanda
        .until(|frame| frame["type"] == "presence" && frame["user"]["userId"] == "dev-hugh")
        .await;
    assert_eq!(
        presence,
        json!({"type": "presence", "room": "general", "event": "joined",
               "user": {"userId": "dev-hugh", "nick": "hugh"}})
    );

    let ack = api.send_message(&hugh, "general", "hello sockets").await;
    let expected = json!({
        "type": "message",
        "room": "general",
        "id": ack["id"],
        "from": {"userId": "dev-hugh", "nick": "hugh"},
        "text": "hello sockets",
        "ts": ack["ts"],
    });
    for member in [&mut wanda, &mut walt] {
        let (_, message) = member.until(is_message(&ack["id"])).await;
        assert_eq!(message, expected, "{}", member.name);
    }

    // Walt answers over WebSocket; hugh polls for what came after his own message.
    let reply = walt
        .ask_for(
            json!({"action": "send", "room": "general", "text": "hello poller"}),
            "ack",
        )
        .await;
    let after = format!("/api/rooms/general/messages?after={}", ack["id"].as_str().unwrap());
    let page = api.history_until(&hugh, &after, |messages| !messages.is_empty()).await;
    assert_eq!(
        page["messages"],
        json!([{
            "id": reply["id"],
            "from": {"userId": walt_id, "nick": "walt"},
            "text": "hello poller",
            "ts": reply["ts"],
        }])
    );
    // Polling on from there: nothing new.
    let next = format!("/api/rooms/general/messages?after={}", reply["id"].as_str().unwrap());
    let page = api.call("GET", &next, Some(&hugh), None).await;
    assert_eq!(
        (page.status, &page.body["messages"], &page.body["more"]),
        (200, &json!([]), &json!(false))
    );

    // Vera got none of general's messages: a message to her room comes first.
    api.call("PUT", "/api/rooms/random/members/me", Some(&hugh), None).await;
    let marker = api.send_message(&hugh, "random", "hello random").await;
    let (before, _) = vera.until(is_message(&marker["id"])).await;
    assert!(
        !before.iter().any(|frame| frame["type"] == "message"),
        "vera: {before:?}"
    );
    gateway.shutdown().await;
}

// ---------------------------------------------------------------------------------------
// Polling `after` under concurrent senders

/// Messages each sender sends.
const PER_SENDER: usize = 40;

/// How a poller reads the room's history pages.
enum Reader {
    /// `GET /api/rooms/general/messages` with the token.
    Http(Api, String),
    /// The `history` action over a WebSocket connection (a member of the room).
    WebSocket(Box<Client>),
}

impl Reader {
    /// The ids of every message after `after`, page by page.
    async fn all_after(&mut self, after: &str) -> Vec<String> {
        let mut all: Vec<String> = Vec::new();
        loop {
            let page = self.page(Some(all.last().map_or(after, String::as_str)), 100).await;
            if page.is_empty() {
                return all;
            }
            all.extend(page);
        }
    }

    /// The ids of the page of `limit` messages after `after`, or the latest page.
    async fn page(&mut self, after: Option<&str>, limit: usize) -> Vec<String> {
        match self {
            Reader::Http(api, token) => {
                let path = match after {
                    Some(after) => format!("/api/rooms/general/messages?after={after}&limit={limit}"),
                    None => format!("/api/rooms/general/messages?limit={limit}"),
                };
                let reply = api.call("GET", &path, Some(token), None).await;
                assert_eq!(reply.status, 200, "{reply:?}");
                ids(reply.body["messages"].as_array().unwrap())
            }
            Reader::WebSocket(ws) => {
                let mut frame = json!({"action": "history", "room": "general", "limit": limit});
                if let Some(after) = after {
                    frame["after"] = json!(after);
                }
                let page = ws.ask_for(frame, "history").await;
                ids(page["messages"].as_array().unwrap())
            }
        }
    }
}

/// Reads the room's history as a poller does: `after` the last id seen, `limit` at a
/// time, from `last` on, until `expected` says how many there are to see and it has seen
/// that many (or [`PAGE_WAIT`] passed since it was told). Every id seen, in the order
/// seen.
async fn poll(
    mut reader: Reader,
    limit: usize,
    mut last: String,
    mut expected: tokio::sync::watch::Receiver<Option<usize>>,
) -> Vec<String> {
    let mut seen = Vec::new();
    let mut deadline = None;
    loop {
        let page = reader.page(Some(&last), limit).await;
        let got_some = !page.is_empty();
        if let Some(id) = page.last() {
            last = id.clone();
        }
        seen.extend(page);
        if let Some(count) = *expected.borrow_and_update() {
            if seen.len() >= count {
                return seen;
            }
            let deadline = *deadline.get_or_insert_with(|| tokio::time::Instant::now() + PAGE_WAIT);
            if tokio::time::Instant::now() >= deadline {
                return seen;
            }
        }
        if !got_some {
            tokio::time::sleep(PAGE_PAUSE).await;
        }
    }
}

async fn polling_after_never_skips_nor_repeats_under_concurrent_senders(gateway: Running) {
    if let Err(failure) = after_polling_under_concurrent_senders(gateway, false).await {
        panic!("{failure}");
    }
}

/// Two pollers (3 and 10 a page, over HTTP or over WebSocket) read the room on with
/// `after` while two HTTP senders and a WebSocket sender each send [`PER_SENDER`]
/// messages as fast as their acks come: each poller sees every acknowledged message
/// once, in ascending id order. What went wrong, if anything.
async fn after_polling_under_concurrent_senders(gateway: Running, over_websocket: bool) -> Result<(), String> {
    let api = Api::of(&gateway);
    let reader = api.dev_token("reader", &[]).await;
    api.call("PUT", "/api/rooms/general/members/me", Some(&reader), None)
        .await;
    // Pollers start from the latest page: this message, once it is settled.
    let anchor = api.send_message(&reader, "general", "anchor").await;
    api.history_until(&reader, "/api/rooms/general/messages?limit=1", has_id(&anchor["id"]))
        .await;

    // Each poller starts from the latest page, read before anyone sends: the anchor.
    let (tell, told) = tokio::sync::watch::channel(None);
    let mut pollers = Vec::new();
    for limit in [3, 10] {
        let mut poller = if over_websocket {
            let mut ws = Client::connect(&gateway, &format!("poller{limit}")).await;
            ws.join("general").await;
            Reader::WebSocket(Box::new(ws))
        } else {
            Reader::Http(api.clone(), reader.clone())
        };
        let start = poller.page(None, limit).await.pop().expect("the anchor");
        assert_eq!(start, anchor["id"].as_str().unwrap(), "limit {limit}");
        pollers.push(tokio::spawn(poll(poller, limit, start, told.clone())));
    }

    // Two HTTP senders and one WebSocket sender, each sending as fast as its acks come.
    let mut senders = Vec::new();
    for nick in ["hs1", "hs2"] {
        let token = api.dev_token(nick, &[]).await;
        api.call("PUT", "/api/rooms/general/members/me", Some(&token), None)
            .await;
        let api = api.clone();
        senders.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            for n in 0..PER_SENDER {
                let ack = api.send_message(&token, "general", &format!("{nick} {n}")).await;
                acked.push(ack["id"].as_str().unwrap().to_owned());
            }
            acked
        }));
    }
    let mut ws = Client::connect(&gateway, "ws1").await;
    ws.join("general").await;
    senders.push(tokio::spawn(async move {
        let mut acked = Vec::new();
        for n in 0..PER_SENDER {
            let ack = ws
                .ask_for(
                    json!({"action": "send", "room": "general", "text": format!("ws1 {n}")}),
                    "ack",
                )
                .await;
            acked.push(ack["id"].as_str().unwrap().to_owned());
        }
        acked
    }));
    let mut acked = BTreeSet::new();
    for sender in senders {
        acked.extend(sender.await.expect("a sender"));
    }
    assert_eq!(acked.len(), 3 * PER_SENDER, "every ack has its own id");
    tell.send(Some(acked.len())).expect("pollers listen");

    let mut failures = Vec::new();
    for (poller, limit) in pollers.into_iter().zip([3, 10]) {
        let seen = poller.await.expect("a poller");
        let repeated_or_unordered: Vec<_> = seen.windows(2).filter(|pair| pair[0] >= pair[1]).collect();
        if !repeated_or_unordered.is_empty() {
            failures.push(format!(
                "limit {limit}: ids not strictly ascending: {repeated_or_unordered:?}"
            ));
        }
        let seen: BTreeSet<String> = seen.into_iter().collect();
        let skipped: Vec<_> = acked.difference(&seen).collect();
        let unknown: Vec<_> = seen.difference(&acked).collect();
        if !skipped.is_empty() || !unknown.is_empty() {
            failures.push(format!("limit {limit}: skipped {skipped:?}, never acked {unknown:?}"));
        }
    }
    gateway.shutdown().await;
    match failures.is_empty() {
        true => Ok(()),
        false => Err(failures.join("; ")),
    }
}

// The WebSocket side of the same promise ("paging either way never skips nor repeats a
// message", docs/protocol.md), and the one order every reader shares.

/// Found while testing polling, when ids were made before publishing: a WebSocket
/// `history` page holds whatever is archived, so `after` skipped a message archived a
/// moment after one with a greater id. Ids now come from the log and each conversation is
/// archived in log order (docs/protocol.md, "One order").
async fn websocket_history_after_polling_never_skips_under_concurrent_senders(gateway: Running) {
    if let Err(failure) = after_polling_under_concurrent_senders(gateway, true).await {
        panic!("{failure}");
    }
}

/// Three senders at once: a member receives the room's messages in ascending id order,
/// so catching up with `after` the last id received never skips one.
async fn room_messages_arrive_live_in_ascending_id_order(gateway: Running) {
    let api = Api::of(&gateway);
    let mut member = Client::connect(&gateway, "member").await;
    member.join("general").await;
    let mut senders = Vec::new();
    for nick in ["hs1", "hs2", "hs3"] {
        let token = api.dev_token(nick, &[]).await;
        api.call("PUT", "/api/rooms/general/members/me", Some(&token), None)
            .await;
        let api = api.clone();
        senders.push(tokio::spawn(async move {
            for n in 0..PER_SENDER {
                api.send_message(&token, "general", &format!("{nick} {n}")).await;
            }
        }));
    }
    for sender in senders {
        sender.await.expect("a sender");
    }
    let live = live_ids(&mut member, 3 * PER_SENDER).await;
    gateway.shutdown().await;
    let inverted: Vec<_> = live.windows(2).filter(|pair| pair[0] > pair[1]).collect();
    assert!(
        inverted.is_empty(),
        "received live before a smaller id (after= the first skips the second): {inverted:?}"
    );
}

/// The ids of the next `count` `message` frames, in the order they came.
async fn live_ids(member: &mut Client, count: usize) -> Vec<String> {
    let mut live = Vec::new();
    while live.len() < count {
        let frame = member.next().await;
        if frame["type"] == "message" {
            live.push(frame["id"].as_str().expect("an id").to_owned());
        }
    }
    live
}

/// docs/protocol.md, "One order": three connections send to one room at full speed while
/// a member and an HTTP poller read. The member's live order is the history's order;
/// catching up `after` any id it saw gives exactly what followed that id live; the poller
/// sees every message once, in that order.
async fn one_order_for_members_history_catch_up_and_pollers(gateway: Running) {
    let api = Api::of(&gateway);
    let reader = api.dev_token("reader", &[]).await;
    api.call("PUT", "/api/rooms/general/members/me", Some(&reader), None)
        .await;
    let anchor = api.send_message(&reader, "general", "anchor").await;
    let anchor = anchor["id"].as_str().unwrap().to_owned();
    api.history_until(&reader, "/api/rooms/general/messages?limit=1", |page| {
        page.iter().any(|message| message["id"] == anchor.as_str())
    })
    .await;

    let mut member = Client::connect(&gateway, "member").await;
    member.join("general").await;
    let (tell, told) = tokio::sync::watch::channel(None);
    let poller = tokio::spawn(poll(Reader::Http(api.clone(), reader.clone()), 7, anchor.clone(), told));

    let mut senders = Vec::new();
    for nick in ["ws1", "ws2", "ws3"] {
        let mut ws = Client::connect(&gateway, nick).await;
        ws.join("general").await;
        senders.push(tokio::spawn(async move {
            for n in 0..PER_SENDER {
                let send = json!({"action": "send", "room": "general", "text": format!("{nick} {n}")});
                ws.ask_for(send, "ack").await;
            }
        }));
    }
    for sender in senders {
        sender.await.expect("a sender");
    }
    let total = 3 * PER_SENDER;
    // The anchor may come live too: fan-out looks the room up when the record arrives,
    // which on a broker still assigning partitions can be after the member joined.
    let mut live = Vec::new();
    while live.len() < total {
        live.extend(live_ids(&mut member, 1).await.into_iter().filter(|id| *id != anchor));
    }
    tell.send(Some(total)).expect("the poller listens");
    let polled = poller.await.expect("the poller");
    assert_eq!(polled, live, "the poller sees every message once, in the live order");

    // The history, read on from the anchor, is the live order; and from any id seen live,
    // `after` gives exactly what followed it.
    let mut reading = Reader::Http(api.clone(), reader.clone());
    assert_eq!(
        reading.all_after(&anchor).await,
        live,
        "the history's order is the live order"
    );
    for (index, id) in live.iter().enumerate() {
        let after = reading.page(Some(id), 100).await;
        let followed = &live[index + 1..];
        assert_eq!(after, followed[..followed.len().min(100)], "catching up after {id}");
    }
    gateway.shutdown().await;
}
