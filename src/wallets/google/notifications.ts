/**
 * Notification policy for Google Wallet passes (pure).
 *
 * Reference: /work/shared/reference/google-wallet.md, section 3 and checklist 21–25:
 *   - "You may send a maximum of 3 messages that trigger a push notification in a 24 hour period";
 *     "Both message and update notifications are limited to 3 per pass within a 24-hour period", so
 *     notifying addMessage calls and NOTIFY_ON_UPDATE PATCHes share one per-object budget;
 *   - a 4th is downgraded: TEXT message / PATCH without notifyPreference (checklist 23);
 *   - messages are capped at 10 per object (and per class): prune before adding (checklist 24); what
 *     Google does at the cap is (unconfirmed), so we never find out;
 *   - message ids may repeat on Google's side, so we choose unique ones (checklist 22).
 */
import type { walletobjects_v1 } from '@googleapis/walletobjects';
import { randomBytes } from 'node:crypto';
import { idSegment, localized, type LocalizedText, type WalletLanguage } from './payloads.js';

type Message = walletobjects_v1.Schema$Message;

export const NOTIFICATIONS_PER_WINDOW = 3;
export const NOTIFICATION_WINDOW_MS = 24 * 60 * 60 * 1000;
export const MAX_MESSAGES = 10;

export interface NotificationDecision {
  notify: boolean;
  /** Notifying sends still allowed in the current window after this decision's send. */
  remaining: number;
  /** When `notify` is false: the moment the oldest counted send leaves the rolling window. */
  nextAllowedAt?: Date;
}

/**
 * Rolling 24 h window. `history` = times of notifying sends (messages and NOTIFY_ON_UPDATE PATCHes) of
 * this object; entries older than 24 h, or in the future, are ignored, so the caller may pass a superset.
 */
export function decideNotification(history: readonly Date[], now: Date): NotificationDecision {
  const t = now.getTime();
  const inWindow = history
    .map((d) => d.getTime())
    .filter((ms) => ms > t - NOTIFICATION_WINDOW_MS && ms <= t)
    .sort((a, b) => a - b);
  if (inWindow.length < NOTIFICATIONS_PER_WINDOW) {
    return { notify: true, remaining: NOTIFICATIONS_PER_WINDOW - inWindow.length - 1 };
  }
  const oldestCounted = inWindow[inWindow.length - NOTIFICATIONS_PER_WINDOW]!;
  return { notify: false, remaining: 0, nextAllowedAt: new Date(oldestCounted + NOTIFICATION_WINDOW_MS) };
}

export interface PrunedMessages {
  /** The messages to keep (send this whole array in a PATCH when `dropped` is not empty; arrays are replaced whole). */
  keep: Message[];
  dropped: Message[];
}

/**
 * Makes room for `adding` new messages under the cap of `max`, dropping the oldest. "Oldest" is the one
 * with the earliest `displayInterval.start`; messages without one count as older than those with one
 * and keep their array order (addMessage appends, so array order is arrival order).
 */
export function pruneMessages(messages: readonly Message[], max = MAX_MESSAGES, adding = 1): PrunedMessages {
  const excess = messages.length + adding - max;
  if (excess <= 0) return { keep: [...messages], dropped: [] };
  const startOf = (m: Message) => {
    const date = m.displayInterval?.start?.date;
    const ms = date ? Date.parse(date) : NaN;
    return Number.isNaN(ms) ? -Infinity : ms;
  };
  const byAge = messages.map((message, index) => ({ message, index })).sort((a, b) => startOf(a.message) - startOf(b.message) || a.index - b.index);
  const droppedIndexes = new Set(byAge.slice(0, excess).map((entry) => entry.index));
  return {
    keep: messages.filter((_, index) => !droppedIndexes.has(index)),
    dropped: messages.filter((_, index) => droppedIndexes.has(index)),
  };
}

/**
 * A message id unique per object. With `key` (e.g. a campaign id: one message per campaign per object)
 * the id is deterministic, so a retried job writes the same id; without, time + randomness.
 */
export function messageId(key?: string, now: Date = new Date()): string {
  if (key !== undefined) return `m-${idSegment(key)}`;
  return `m-${now.getTime().toString(36)}-${randomBytes(4).toString('hex')}`;
}

export interface MessageInput {
  id: string;
  header: LocalizedText;
  body: LocalizedText;
  defaultLanguage: WalletLanguage;
  /** TEXT_AND_NOTIFY when true, TEXT otherwise (checklist 22). */
  notify: boolean;
  /** Start of display (default: now, which also makes pruning order explicit). */
  displayFrom?: Date;
  displayUntil?: Date;
}

export function buildMessage(input: MessageInput): Message {
  const lang = input.defaultLanguage;
  const message: Message = {
    id: input.id,
    header: input.header[lang],
    body: input.body[lang],
    localizedHeader: localized(input.header, lang),
    localizedBody: localized(input.body, lang),
    // `messageType` is the REST field (the doc example's `message_type` is the proto name).
    messageType: input.notify ? 'TEXT_AND_NOTIFY' : 'TEXT',
    displayInterval: { start: { date: (input.displayFrom ?? new Date()).toISOString() } },
  };
  if (input.displayUntil) message.displayInterval!.end = { date: input.displayUntil.toISOString() };
  return message;
}
