import type { Executor } from '../db/database.js';

/**
 * Called in the purchase's transaction when a purchase completes `count` stamp cards. For now it
 * records each reward as a `stamp_rewards` row ('earned'); the coupons module (issue #17, item 3)
 * hooks in here to issue the program's reward coupon for each row, in the same transaction, so a
 * reward exists exactly when the purchase that earned it does.
 */
export async function onStampRewardsEarned(
  trx: Executor,
  reward: { programId: string; cardId: string; count: number; purchaseId: string },
): Promise<string[]> {
  if (reward.count <= 0) return [];
  const rows = await trx
    .insertInto('stamp_rewards')
    .values(Array.from({ length: reward.count }, () => ({ program_id: reward.programId, card_id: reward.cardId, purchase_id: reward.purchaseId })))
    .returning('id')
    .execute();
  return rows.map((row) => row.id);
}

/** A refund of the purchase that earned them: its rewards are revoked (returns how many). */
export async function revokeStampRewards(trx: Executor, purchase: { programId: string; purchaseId: string }): Promise<number> {
  const revoked = await trx
    .updateTable('stamp_rewards')
    .set({ status: 'revoked', revoked_at: new Date() })
    .where('program_id', '=', purchase.programId)
    .where('purchase_id', '=', purchase.purchaseId)
    .where('status', '=', 'earned')
    .returning('id')
    .execute();
  return revoked.length;
}
