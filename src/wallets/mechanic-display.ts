/**
 * What a wallet card shows of the program's mechanic (issue #17 item 5), in both languages, for
 * the Apple pass (pass-service.ts) and the Google object (google/service.ts) alike: a discount
 * card its current percent and the spend to the next level, a stamp card its stamps and the
 * picture of them. Points programs show what they always did (kind 'points').
 */
import { mechanicView } from '../cards/dto.js';
import type { CardRow, ProgramRow } from '../db/schema.js';
import { en } from '../i18n/en.js';
import { formatMoney, formatNumber, type Lang } from '../i18n/format.js';
import { ru } from '../i18n/ru.js';
import type { LoyaltyRules } from '../loyalty/rules.js';
import type { Design } from '../programs/schemas.js';
import { DEFAULT_DESIGN } from '../programs/service.js';
import type { StampStripStyle } from './stamp-strip.js';

export interface LocalizedText {
  ru: string;
  en: string;
}

export type MechanicDisplay =
  | { kind: 'points' }
  | {
      kind: 'discount';
      percent: number;
      /** "5 %" / "5%". */
      percentText: LocalizedText;
      /** "Скидка 10 % — после покупок ещё на 12 500,00 ₽", or the top-level text. */
      next: LocalizedText;
      nextPercent: number | null;
      spendToGo: number | null;
    }
  | {
      kind: 'stamps';
      count: number;
      perReward: number;
      /** "4 / 6". */
      value: string;
      reward: LocalizedText;
      /** The picture's alternative text: "Collected: 4 of 6". */
      imageDescription: LocalizedText;
      style: StampStripStyle;
    };

const CATALOGUES = { ru, en } as const;

function both(render: (lang: Lang) => string): LocalizedText {
  return { ru: render('ru'), en: render('en') };
}

export function percentText(lang: Lang, percent: number): string {
  // Russian writes a space before the sign ("5 %"), English none ("5%").
  return lang === 'ru' ? `${formatNumber(lang, percent)}\u00a0%` : `${formatNumber(lang, percent)}%`;
}

/** The stamp picture's colours: the pass background, filled stamps in the text colour, empty ones in the label colour. */
export function stampStyleOf(program: Pick<ProgramRow, 'design' | 'rules'>): StampStripStyle | null {
  const rules = program.rules as LoyaltyRules;
  if (rules.mechanic !== 'stamps' || !rules.stamps) return null;
  const design = { ...DEFAULT_DESIGN, ...(program.design as Partial<Design>) };
  return { perReward: rules.stamps.perReward, background: design.backgroundColor, filled: design.foregroundColor, empty: design.labelColor };
}

export function mechanicDisplay(card: Pick<CardRow, 'tier' | 'lifetime_spend' | 'stamps'>, program: Pick<ProgramRow, 'design' | 'rules' | 'currency'>): MechanicDisplay {
  const rules = program.rules as LoyaltyRules;
  const view = mechanicView(card, rules);
  if (view.mechanic === 'discount') {
    const percent = view.discountPercent ?? 0;
    const next = view.nextDiscount;
    return {
      kind: 'discount',
      percent,
      percentText: both((lang) => percentText(lang, percent)),
      next: next
        ? both((lang) => CATALOGUES[lang].wallet.nextDiscount(percentText(lang, next.percent), formatMoney(lang, program.currency, next.spendToGo)))
        : both((lang) => CATALOGUES[lang].wallet.topDiscount),
      nextPercent: next?.percent ?? null,
      spendToGo: next?.spendToGo ?? null,
    };
  }
  if (view.mechanic === 'stamps' && view.stamps && rules.stamps) {
    const { count, perReward } = view.stamps;
    const shown = Math.min(count, perReward);
    const rewardName = rules.stamps.reward.name;
    return {
      kind: 'stamps',
      count: shown,
      perReward,
      value: ru.wallet.stampsValue(shown, perReward),
      reward: both((lang) => CATALOGUES[lang].wallet.reward(rewardName[lang], perReward)),
      imageDescription: both((lang) => CATALOGUES[lang].wallet.stampsImage(shown, perReward)),
      style: stampStyleOf(program)!,
    };
  }
  return { kind: 'points' };
}

export const MECHANIC_LABELS = {
  discount: both((lang) => CATALOGUES[lang].wallet.discountLabel),
  nextDiscount: both((lang) => CATALOGUES[lang].wallet.nextDiscountLabel),
  stamps: both((lang) => CATALOGUES[lang].wallet.stampsLabel),
  reward: both((lang) => CATALOGUES[lang].wallet.rewardLabel),
  discountChange: both((lang) => CATALOGUES[lang].wallet.discountChange),
  stampsChange: both((lang) => CATALOGUES[lang].wallet.stampsChange),
};
