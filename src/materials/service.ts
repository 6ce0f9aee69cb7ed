import { Type, type Static } from '@sinclair/typebox';
import type { AppContext } from '../app-context.js';
import { notFound } from '../http/errors.js';
import { Uuid } from '../http/schemas.js';
import { joinUrl, SOURCE_PATTERN } from '../enrollment/links.js';
import { points } from '../enrollment/i18n.js';
import { findActiveStaff } from '../enrollment/staff-routes.js';
import type { LoyaltyRules } from '../loyalty/rules.js';
import type { Design } from '../programs/schemas.js';
import { getProgramOr404 } from '../programs/service.js';
import { MATERIAL_FORMATS, renderMaterialPdf, renderMaterialSvg, type MaterialFormat } from './render.js';

export const MaterialParams = Type.Object({
  format: Type.Union(
    MATERIAL_FORMATS.map((f) => Type.Literal(f)),
    { description: 'poster-a4, poster-a5, table-tent (A4 folded in two), stickers (A4 sheet of six 90 × 90 mm)' },
  ),
});
export const MaterialQuery = Type.Object(
  {
    output: Type.Optional(Type.Union([Type.Literal('pdf'), Type.Literal('svg')], { default: 'pdf' })),
    lang: Type.Optional(Type.Union([Type.Literal('ru'), Type.Literal('en')], { description: "Default: the program's language" })),
    staff: Type.Optional(Uuid),
    source: Type.Optional(Type.String({ pattern: SOURCE_PATTERN, description: 'Source tag of the join link, e.g. store-tverskaya, window, receipt' })),
    headline: Type.Optional(Type.String({ minLength: 1, maxLength: 80, description: 'Replaces the default headline' })),
    offer: Type.Optional(Type.String({ minLength: 1, maxLength: 80, description: 'Replaces the welcome-offer line (default: the welcome bonus from the rules)' })),
  },
  { additionalProperties: false },
);
export type MaterialRequest = Static<typeof MaterialQuery> & { format: MaterialFormat };

const TEXTS = {
  ru: {
    headline: 'Карта постоянного покупателя — в вашем телефоне',
    offer: (bonus: number) => `${points('ru', bonus)} за вступление`,
    instruction: 'Наведите камеру телефона на код и добавьте карту в Wallet',
    footnote: 'Apple Wallet · Google Wallet · без приложений и пластика',
  },
  en: {
    headline: 'Your loyalty card, on your phone',
    offer: (bonus: number) => `${points('en', bonus)} for joining`,
    instruction: 'Point your phone camera at the code and add the card to your wallet',
    footnote: 'Apple Wallet · Google Wallet · no app, no plastic',
  },
} as const;

/**
 * A print-ready material of the program (issue #15, item 5): its colours, its logo when uploaded,
 * the welcome offer from its rules and the QR code of its join link — for one staff member (cards
 * enrolled through it count for them) or with a source tag (e.g. one per store), like the QR codes.
 */
export async function renderMaterial(ctx: Pick<AppContext, 'db' | 'links'>, programId: string, request: MaterialRequest) {
  const program = await getProgramOr404(ctx.db, programId);
  if (request.staff && !(await findActiveStaff(ctx.db, program.id, request.staff))) throw notFound('staff', 'Staff member not found');
  const lang = request.lang ?? program.default_language;
  const t = TEXTS[lang];
  const design = program.design as Design;
  const rules = program.rules as LoyaltyRules;
  // The sharpest logo uploaded for the pass (Apple: up to 480 × 150 pixels at @3x).
  const logos = await ctx.db
    .selectFrom('program_image')
    .select(['name', 'png'])
    .where('program_id', '=', program.id)
    .where('name', 'in', ['logo@3x.png', 'logo@2x.png', 'logo.png'])
    .execute();
  const logo = ['logo@3x.png', 'logo@2x.png', 'logo.png'].map((name) => logos.find((row) => row.name === name)).find(Boolean);
  const input = {
    format: request.format,
    programName: program.name,
    backgroundColor: design.backgroundColor,
    foregroundColor: design.foregroundColor,
    logoPng: logo ? Buffer.from(logo.png) : null,
    headline: request.headline ?? t.headline,
    offer: request.offer ?? (rules.welcomeBonus > 0 ? t.offer(rules.welcomeBonus) : ''),
    instruction: t.instruction,
    footnote: t.footnote,
    joinUrl: joinUrl(ctx.links.publicUrl, program.slug, { staff: request.staff, source: request.source }),
  };
  const output = request.output ?? 'pdf';
  const fileName = `${program.slug}-${request.format}${request.staff ? '-staff' : ''}${request.source ? `-${request.source}` : ''}.${output}`;
  if (output === 'svg') return { type: 'image/svg+xml; charset=utf-8', fileName, body: await renderMaterialSvg(input), joinUrl: input.joinUrl };
  return { type: 'application/pdf', fileName, body: await renderMaterialPdf(input), joinUrl: input.joinUrl };
}
