import type { CardRow, ProgramRow } from '../db/schema.js';
import { mechanicOf, type LoyaltyRules } from '../loyalty/rules.js';
import type { CardDto } from './schemas.js';

export interface CardLinks {
  publicUrl: string;
  googleEnabled: boolean;
}

/** +79161234567 → +7916***4567: enough for a cashier to confirm, not enough to harvest. */
export function maskPhone(phone: string): string {
  if (phone.length <= 8) return phone.replace(/\d(?=\d{2})/g, '*');
  return `${phone.slice(0, 5)}${'*'.repeat(phone.length - 9)}${phone.slice(-4)}`;
}

export function cardUrls(publicUrl: string, card: Pick<CardRow, 'public_token'>) {
  const page = `${publicUrl}/c/${card.public_token}`;
  return { installUrl: page, applePassUrl: `${page}/card.pkpass`, googleSaveUrl: `${page}/google` };
}

export function referralUrl(publicUrl: string, program: Pick<ProgramRow, 'slug'>, card: Pick<CardRow, 'referral_code'>) {
  return `${publicUrl}/join/${program.slug}?ref=${encodeURIComponent(card.referral_code)}`;
}

/**
 * The card as the API shows it. Personal data (full phone, email, birthday) only for keys that may
 * see it (program admin); a POS key sees the name and a masked phone.
 */
export function cardDto(
  card: CardRow,
  program: ProgramRow,
  links: CardLinks,
  options: { revealPersonalData: boolean; appleDevices: number; googleSaved?: boolean },
): CardDto {
  const rules = program.rules as LoyaltyRules;
  const tier = rules.tiers.find((t) => t.code === card.tier);
  const urls = cardUrls(links.publicUrl, card);
  const reveal = options.revealPersonalData;
  return {
    id: card.id,
    programId: card.program_id,
    number: card.number,
    holder: {
      name: card.holder_name,
      phone: reveal ? card.phone : maskPhone(card.phone),
      email: reveal ? card.email : null,
      birthday: reveal && card.birthday ? toIsoDate(card.birthday) : null,
    },
    consent: { marketing: card.consent, at: card.consent_at?.toISOString() ?? null },
    tier: { code: card.tier, name: tier?.name ?? { ru: card.tier, en: card.tier } },
    balance: card.balance,
    pendingPoints: card.pending_points,
    verification: { channel: card.channel, verifiedAt: card.verified_at?.toISOString() ?? null, via: card.verified_via },
    lifetimeSpend: card.lifetime_spend,
    ...mechanicView(card, rules),
    referralCode: card.referral_code,
    referralUrl: referralUrl(links.publicUrl, program, card),
    referredBy: card.referred_by,
    staffId: card.staff_id,
    source: card.source,
    externalId: card.external_id,
    externalNumber: card.external_number,
    status: card.status,
    wallet: { appleDevices: options.appleDevices, googleSaved: options.googleSaved ?? false },
    cardToken: card.public_token,
    installUrl: urls.installUrl,
    applePassUrl: urls.applePassUrl,
    googleSaveUrl: links.googleEnabled ? urls.googleSaveUrl : null,
    createdAt: card.created_at.toISOString(),
    updatedAt: card.updated_at.toISOString(),
  };
}

/** What a wallet needs to show the program's mechanic on the card. */
export function mechanicView(card: Pick<CardRow, 'tier' | 'lifetime_spend' | 'stamps'>, rules: LoyaltyRules) {
  const mechanic = mechanicOf(rules);
  let discountPercent: number | null = null;
  let nextDiscount: { percent: number; spendToGo: number } | null = null;
  if (mechanic === 'discount') {
    const index = rules.tiers.findIndex((t) => t.code === card.tier);
    discountPercent = index === -1 ? 0 : (rules.tiers[index].discountPercent ?? 0);
    // The next level is the first tier above the card's with a higher threshold than spend so far.
    const next = rules.tiers.slice(index + 1).find((t) => t.threshold > card.lifetime_spend);
    if (next) nextDiscount = { percent: next.discountPercent ?? 0, spendToGo: next.threshold - card.lifetime_spend };
  }
  const stamps = mechanic === 'stamps' && rules.stamps ? { count: card.stamps, perReward: rules.stamps.perReward } : null;
  return { mechanic, discountPercent, nextDiscount, stamps };
}

function toIsoDate(value: Date | string): string {
  if (typeof value === 'string') return value.slice(0, 10);
  // DATE columns arrive as local-midnight Dates; format in local time so the day never shifts.
  const y = value.getFullYear();
  const m = String(value.getMonth() + 1).padStart(2, '0');
  const d = String(value.getDate()).padStart(2, '0');
  return `${y}-${m}-${d}`;
}
