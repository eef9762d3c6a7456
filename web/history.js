// How the page reads a room's or a direct conversation's history. Each has one order, the
// log's, which live frames, `history` pages in both directions and `after` catch-up all
// follow, and message ids sort in it: catching up `after` the newest id read gives exactly
// what followed it, so the page never reads from "a little earlier", sorts or guesses.
// A conversation (state.js) keeps `lastId`, the newest id read in that order, `loaded` once
// a page of it is shown, and `gapFrom` between a catch-up and the live message confirming it.

/// The latest page, and each page scrolled back.
export const PAGE_SIZE = 50;
/// Each page read to catch up.
const CATCH_UP_PAGE_SIZE = 100;
/// The smallest message id: `history after` it reads a conversation from its start.
const FIRST_ID = "0".repeat(26);

/// The frame fields that name a conversation: `{room}` or `{with}`.
export function target(conversation) {
  return conversation.kind === "room" ? { room: conversation.room } : { with: conversation.with };
}

/// The readers of a conversation's history, over `request` (a client frame → its answer),
/// handing what they read to `merge(conversation, messages, {live})`; `onLoaded` is told
/// when a conversation's first page is in (and whether older messages remain).
export function historyReader({ request, merge, onLoaded }) {
  const page = (conversation, fields) => request({ action: "history", ...target(conversation), ...fields });

  /// Fills a conversation in: every message after the newest one read before (the pages
  /// in between, if more came); and, when none of it is shown yet (a new or reloaded
  /// page), the page of messages before those, or the latest page. The first live message
  /// afterwards confirms that nothing fell between the history and live delivery.
  /// A conversation shown before (a connection that came back) also rereads its latest
  /// page: edits and deletes made while it was away change messages it already had, which
  /// no page `after` them holds.
  async function catchUp(conversation) {
    const wasLoaded = conversation.loaded;
    let after = conversation.lastId;
    let read = after; // the newest id the pages held
    let firstNew = null; // the oldest message read after `after`
    if (after !== null) {
      for (;;) {
        const next = await page(conversation, { after, limit: CATCH_UP_PAGE_SIZE });
        merge(conversation, next.messages);
        if (next.messages.length === 0) break;
        firstNew ??= next.messages[0].id;
        read = next.messages[next.messages.length - 1].id;
        if (!next.more) break;
        after = read;
      }
    }
    if (wasLoaded) {
      const latest = await page(conversation, firstNew ? { before: firstNew, limit: PAGE_SIZE } : { limit: PAGE_SIZE });
      merge(conversation, latest.messages);
    } else {
      const latest = await page(conversation, firstNew ? { before: firstNew, limit: PAGE_SIZE } : { limit: PAGE_SIZE });
      conversation.loaded = true;
      conversation.moreOlder = latest.more;
      merge(conversation, latest.messages);
      onLoaded(conversation);
      const last = latest.messages.at(-1)?.id;
      if (last && (!read || last > read)) read = last;
    }
    conversation.gapFrom = read ?? FIRST_ID;
  }

  /// A message sent out just before this connection joined (or connected) can reach the
  /// history just after catch-up read it: then it came neither live nor in the pages. The
  /// first live message after catch-up settles it: once the history holds that message it
  /// holds every one before it (the archive writes in the log's order), so reading `after`
  /// the catch-up's end up to it fills any such gap. Until the archive has it, the next
  /// live message asks again.
  async function closeGap(conversation, liveId) {
    if (!conversation.gapFrom || conversation.closingGap) return;
    conversation.closingGap = true;
    try {
      for (;;) {
        const next = await page(conversation, { after: conversation.gapFrom, limit: CATCH_UP_PAGE_SIZE });
        merge(conversation, next.messages, { live: true });
        const last = next.messages.at(-1)?.id;
        if (last) conversation.gapFrom = last;
        if (last && last >= liveId) {
          conversation.gapFrom = null;
          return;
        }
        if (!next.more || !last) return;
      }
    } catch {
      // Not read this time: the next live message asks again.
    } finally {
      conversation.closingGap = false;
    }
  }

  /// One poll: the conversation's latest page, which holds what came since the last poll
  /// and also brings edits and deletes of the recent messages; when more came than the
  /// page holds, the pages `after` the newest message read before fill the gap.
  async function poll(conversation) {
    const wasLoaded = conversation.loaded;
    const after = conversation.lastId;
    const latest = await page(conversation, { limit: PAGE_SIZE });
    if (!conversation.loaded) {
      conversation.loaded = true;
      conversation.moreOlder = latest.more;
      onLoaded(conversation);
    }
    const first = latest.messages[0];
    if (after && first && first.id > after && latest.more) {
      let from = after;
      for (;;) {
        const gap = await page(conversation, { after: from, limit: CATCH_UP_PAGE_SIZE });
        merge(conversation, gap.messages, { live: true });
        if (!gap.more || gap.messages.length === 0) break;
        from = gap.messages[gap.messages.length - 1].id;
      }
    }
    merge(conversation, latest.messages, { live: wasLoaded });
  }

  return { catchUp, closeGap, poll };
}
