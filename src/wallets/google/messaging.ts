/**
 * Sending one message to one loyalty object with the notification rules applied (the I/O around the
 * pure policy in notifications.ts). Reference: /work/shared/reference/google-wallet.md, section 3 and
 * checklist 22–25.
 *
 * Order: decide notify (local 3-per-24h budget) → GET the object → prune to make room (PATCH the whole
 * `messages` array) → addMessage (never retried after a response; a quota answer downgrades to TEXT in
 * the client). The caller records a notifying send only when the result says `notified`.
 */
import { GoogleApiError, type GoogleWalletClient, type LoyaltyObject } from './client.js';
import { buildMessage, decideNotification, messageId, pruneMessages } from './notifications.js';
import type { LocalizedText, WalletLanguage } from './payloads.js';

export interface SendObjectMessageInput {
  header: LocalizedText;
  body: LocalizedText;
  defaultLanguage: WalletLanguage;
  /** The sender wants a lock-screen notification. */
  notify: boolean;
  /** Notifying sends (messages and NOTIFY_ON_UPDATE PATCHes) of this object in the last 24 h. */
  history: readonly Date[];
  now: Date;
  /** Deterministic id source, e.g. the campaign id. */
  key?: string;
}

export interface SendObjectMessageResult {
  resource: LoyaltyObject;
  messageId: string;
  /** Google accepted a TEXT_AND_NOTIFY message: count it in the object's history. */
  notified: boolean;
  /** Notification wanted but not sent: our budget was used up, or Google answered with its quota error. */
  downgraded: boolean;
  /** Messages removed to stay at ≤ 10. */
  pruned: number;
  /** The object already carried a message with this (keyed) id: nothing was sent again. */
  alreadySent?: boolean;
}

export async function sendObjectMessage(
  client: GoogleWalletClient,
  objectId: string,
  input: SendObjectMessageInput,
): Promise<SendObjectMessageResult> {
  const decision = decideNotification(input.history, input.now);
  const notify = input.notify && decision.notify;
  const current = await client.getObject(objectId);
  if (!current) {
    throw new GoogleApiError({ status: 404, reason: 'NOT_FOUND', message: `loyalty object ${objectId} does not exist`, resourceId: objectId, operation: 'sendObjectMessage' });
  }
  const id = messageId(input.key, input.now);
  // A keyed message already on the object was sent by an earlier attempt (a retried job): once only.
  if (input.key !== undefined && current.messages?.some((m) => m.id === id)) {
    return { resource: current, messageId: id, notified: false, downgraded: false, pruned: 0, alreadySent: true };
  }
  const { keep, dropped } = pruneMessages(current.messages ?? []);
  if (dropped.length > 0) await client.patchObject(objectId, { messages: keep });
  const result = await client.addObjectMessage(
    objectId,
    buildMessage({ id, header: input.header, body: input.body, defaultLanguage: input.defaultLanguage, notify, displayFrom: input.now }),
  );
  return {
    resource: result.resource,
    messageId: id,
    notified: result.notified,
    downgraded: (input.notify && !decision.notify) || result.downgraded,
    pruned: dropped.length,
  };
}
