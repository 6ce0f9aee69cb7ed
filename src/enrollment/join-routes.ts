import { createHash, randomBytes } from 'node:crypto';
import cookie from '@fastify/cookie';
import formbody from '@fastify/formbody';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { AppContext } from '../app-context.js';
import { cardUrls, referralUrl } from '../cards/dto.js';
import { findCardByPhone, findCardByPublicToken, findCardByReferralCode } from '../cards/repository.js';
import type { CardRow, ProgramRow } from '../db/schema.js';
import type { Executor } from '../db/database.js';
import { AppError, notFound } from '../http/errors.js';
import { Uuid } from '../http/schemas.js';
import type { LoyaltyRules } from '../loyalty/rules.js';
import { findProgram, findProgramBySlug } from '../programs/repository.js';
import type { Texts } from '../programs/schemas.js';
import { localDay, recordJoinView, visitorHash } from './funnel.js';
import { checkFormToken, HONEYPOT_FIELD, issueFormToken, TIMING_FIELD, type JoinFormSettings } from './guard.js';
import { chooseLang, isLang, LANG_COOKIE, MESSAGES, type FieldName, type Lang } from './i18n.js';
import { formatMaskedPhone, programName } from '../i18n/format.js';
import { joinUrl, normalizeSource, SOURCE_PATTERN } from './links.js';
import { brandColours, CARD_SCRIPT_HASH, detectPlatform, renderCardPage, renderHaveCardPage, renderJoinPage, renderNotice, renderVerifyPage, type JoinFormValues } from './pages.js';
import { claimPlasticCard, findClaimableCard, hasUnverifiedClaim, normalizePlasticNumber } from './claim.js';
import { drawIcon, drawPreview, ICON_SIZES, WebAppImages } from './web-app.js';
import { claimCardByPhone } from './takeover.js';
import { qrSvgInline, QR_SIZE } from './qr.js';
import { issueCard, normalizePhone } from './service.js';
import { findActiveStaff } from './staff-routes.js';

/**
 * The public enrollment pages (no key):
 *
 * - `GET /join/{slug}` — the join form; counts a view once per visitor per day;
 * - `POST /join/{slug}` — enrolls (same rules as `POST /api/v1/cards`) and redirects to the card;
 * - `GET /c/{cardToken}` — the card page (wallet buttons by device, balance, barcode, referral link);
 * - `GET /programs/{slug}/qr.svg|png` — QR codes of the join link for print.
 */
export interface PublicPagesOptions {
  ctx: AppContext;
  joinForm: JoinFormSettings;
  /** HMAC keys derived from the instance admin key (see guard.ts). */
  keys: { form: Buffer; visitor: Buffer };
}

const VISITOR_COOKIE = 'wc_vid';
/** Public tokens of the cards this browser enrolled or opened: lets a re-submission find its own card. */
const CARDS_COOKIE = 'wc_cards';
const MAX_REMEMBERED_CARDS = 5;
const YEAR_SECONDS = 365 * 24 * 60 * 60;
const SLUG_RE = /^[a-z0-9][a-z0-9-]{1,62}$/;
const TOKEN_RE = /^[A-Za-z0-9_-]{16,64}$/;
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const REFERRAL_RE = /^[A-Za-z0-9]{1,32}$/;
// Link previews (Telegram, WhatsApp, VK, Facebook…) and crawlers fetch shared links: not visitors.
const NON_HUMAN_UA = /bot\b|bot\/|crawler|spider|slurp|facebookexternalhit|vkshare|whatsapp|preview|embedly|curl\/|wget\/|python-requests|go-http-client/i;

// The one script allowed is the card page's own, by its hash (pages.ts, CARD_SCRIPT); icons and the
// manifest come from this origin; nothing from any other.
const CSP = `default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; script-src '${CARD_SCRIPT_HASH}'; manifest-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'`;

/** The program's icons, linked from the join and card pages (favicon, home screen). */
export function programIcons(slug: string) {
  return { png192: `/programs/${slug}/icon-192.png`, appleTouch: `/programs/${slug}/icon-180.png` };
}

type Query = Record<string, string | string[] | undefined>;

const first = (value: unknown): string | undefined => {
  const v = Array.isArray(value) ? value[0] : value;
  return typeof v === 'string' ? v : undefined;
};
const text = (value: unknown, max: number) => (first(value) ?? '').replace(/[\u0000-\u001f\u007f]/g, ' ').trim().slice(0, max);

function localized(value: { ru?: string; en?: string } | undefined, lang: Lang): string | undefined {
  const chosen = value?.[lang]?.trim() || value?.[lang === 'ru' ? 'en' : 'ru']?.trim();
  return chosen || undefined;
}

interface Attribution {
  inviter: CardRow | undefined;
  staffId: string | null;
  source: string | null;
}

/**
 * Reads `ref`, `staff` and `source` from a link or the form. Anything unknown or invalid is
 * dropped, never an error: a customer with a stale poster or a mistyped code still gets a card.
 */
async function resolveAttribution(executor: Executor, program: ProgramRow, raw: { ref?: string; staff?: string; source?: string }): Promise<Attribution> {
  let inviter: CardRow | undefined;
  const ref = raw.ref?.trim().toUpperCase();
  if (ref && REFERRAL_RE.test(ref)) {
    const card = await findCardByReferralCode(executor, program.id, ref);
    if (card && card.status === 'active') inviter = card;
  }
  let staffId: string | null = null;
  if (raw.staff && UUID_RE.test(raw.staff.trim())) {
    staffId = (await findActiveStaff(executor, program.id, raw.staff.trim().toLowerCase()))?.id ?? null;
  }
  // A referral link without its own source tag is counted under "referral".
  const source = normalizeSource(raw.source) ?? (inviter ? 'referral' : null);
  return { inviter, staffId, source };
}

/** A stable version id for a consent text: the text is stored once under it (consent_text). */
function consentVersion(programId: string, lang: Lang, body: string): string {
  return `${lang}-${createHash('sha256').update(`${programId}\n${lang}\n${body}`).digest('hex').slice(0, 16)}`;
}

function validate(values: JoinFormValues, program: ProgramRow, lang: Lang, today: string) {
  const t = MESSAGES[lang].errors;
  const errors: Partial<Record<FieldName, string>> = {};
  let phone: string | undefined;
  if (!values.name) errors.name = t.nameRequired;
  else if (values.name.length > 200) errors.name = t.nameTooLong;
  if (!values.phone) errors.phone = t.phoneRequired;
  else {
    try {
      phone = normalizePhone(values.phone, program.currency);
    } catch (error) {
      if (!(error instanceof AppError)) throw error;
      errors.phone = t.phoneInvalid;
    }
  }
  if (values.email && (values.email.length > 254 || !/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(values.email))) errors.email = t.emailInvalid;
  let birthday: string | undefined;
  if (values.birthday) {
    // type=date sends YYYY-MM-DD; browsers without it send what was typed, often DD.MM.YYYY.
    const dotted = /^(\d{1,2})\.(\d{1,2})\.(\d{4})$/.exec(values.birthday);
    const iso = dotted ? `${dotted[3]}-${dotted[2].padStart(2, '0')}-${dotted[1].padStart(2, '0')}` : values.birthday;
    const parsed = /^\d{4}-\d{2}-\d{2}$/.test(iso) ? new Date(`${iso}T00:00:00Z`) : undefined;
    if (!parsed || Number.isNaN(parsed.getTime()) || parsed.toISOString().slice(0, 10) !== iso || iso < '1900-01-01' || iso > today) {
      errors.birthday = t.birthdayInvalid;
    } else birthday = iso;
  }
  return { errors, phone, birthday };
}

export const publicPageRoutes: FastifyPluginAsync<PublicPagesOptions> = async (app, { ctx, joinForm, keys }) => {
  const { db } = ctx;
  const publicUrl = ctx.links.publicUrl;
  const secureCookies = publicUrl.startsWith('https://');
  if (!app.hasRequestDecorator('cookies')) await app.register(cookie);
  // Only this plugin's routes take form bodies; the JSON API keeps refusing them.
  await app.register(formbody, { bodyLimit: 16 * 1024 });

  const cookieOptions = (path: string) => ({ path, maxAge: YEAR_SECONDS, httpOnly: true, sameSite: 'lax' as const, secure: secureCookies });

  function htmlReply(reply: FastifyReply, status: number, body: string) {
    return reply
      .status(status)
      .type('text/html; charset=utf-8')
      .header('cache-control', 'no-store')
      .header('content-security-policy', CSP)
      .header('referrer-policy', 'no-referrer')
      .header('x-content-type-options', 'nosniff')
      .header('x-robots-tag', 'noindex, nofollow')
      .header('vary', 'Accept-Language, Cookie')
      .send(body);
  }

  /** The page language; `?lang=` (or the form's `lang`) is remembered in a cookie. */
  function pageLang(request: FastifyRequest, reply: FastifyReply, fallback: Lang, explicit?: string): Lang {
    const lang = chooseLang({
      query: explicit,
      cookie: request.cookies[LANG_COOKIE],
      acceptLanguage: request.headers['accept-language'],
      fallback,
    });
    if (isLang(explicit) && request.cookies[LANG_COOKIE] !== explicit) reply.setCookie(LANG_COOKIE, explicit, cookieOptions('/'));
    return lang;
  }

  /** The same page in the other language: the current query with `lang` replaced. */
  function otherLangHref(path: string, query: Record<string, string | null | undefined>, lang: Lang): string {
    const params = new URLSearchParams();
    for (const [key, value] of Object.entries(query)) if (value && key !== 'lang') params.set(key, value);
    params.set('lang', lang === 'ru' ? 'en' : 'ru');
    return `${path}?${params.toString()}`;
  }

  function rememberedCards(request: FastifyRequest): string[] {
    return (request.cookies[CARDS_COOKIE] ?? '').split('.').filter((t) => TOKEN_RE.test(t));
  }
  function rememberCard(request: FastifyRequest, reply: FastifyReply, token: string) {
    const tokens = [token, ...rememberedCards(request).filter((t) => t !== token)].slice(0, MAX_REMEMBERED_CARDS);
    reply.setCookie(CARDS_COOKIE, tokens.join('.'), cookieOptions('/join'));
  }

  function notFoundPage(request: FastifyRequest, reply: FastifyReply) {
    const lang = pageLang(request, reply, 'ru', first((request.query as Query)?.lang));
    const t = MESSAGES[lang];
    const path = request.url.split('?')[0];
    return htmlReply(
      reply,
      404,
      renderNotice({ lang, brand: brandColours({}), otherLangHref: otherLangHref(path, {}, lang), heading: t.notFoundTitle, title: t.notFoundTitle, text: t.notFoundText }),
    );
  }

  // The rate limit's 429 is a page here, not a JSON problem; everything else goes to the app's handler.
  app.setErrorHandler((error: Error & { statusCode?: number }, request, reply) => {
    if (error.statusCode === 429 && request.url.startsWith('/join/')) {
      const lang = pageLang(request, reply, 'ru', first((request.body as Query | undefined)?.lang));
      const t = MESSAGES[lang];
      return htmlReply(
        reply,
        429,
        renderNotice({
          lang,
          brand: brandColours({}),
          otherLangHref: otherLangHref(request.url.split('?')[0], {}, lang),
          heading: t.tooManyTitle,
          title: t.tooManyTitle,
          text: t.tooManyText,
        }),
      );
    }
    throw error;
  });

  interface FormState {
    program: ProgramRow;
    lang: Lang;
    attribution: Attribution;
    values: JoinFormValues;
    errors?: Partial<Record<FieldName, string>>;
    formError?: string;
    /** The program has imported plastic cards: the form links to "I already have a card". */
    plastic?: boolean;
  }

  function consentText(program: ProgramRow, lang: Lang): string {
    return localized((program.texts as Texts).consent, lang) ?? MESSAGES[lang].defaultConsent(programName(program, lang));
  }

  function joinPage(state: FormState): string {
    const { program, lang, attribution } = state;
    const rules = program.rules as LoyaltyRules;
    const texts = program.texts as Texts;
    const hiddenAttribution = {
      ref: attribution.inviter?.referral_code ?? null,
      staff: attribution.staffId,
      source: attribution.source,
    };
    const name = programName(program, lang);
    const t = MESSAGES[lang];
    const offer = [
      rules.welcomeBonus > 0 ? `+${t.welcomeBonus(rules.welcomeBonus)}.` : '',
      attribution.inviter && rules.referral.inviteeBonus > 0 ? `${t.invited}. ${t.referralBonus(rules.referral.inviteeBonus, rules.referral.grantOn === 'first_purchase')}.` : '',
      t.joinLead,
    ].filter(Boolean).join(' ');
    return renderJoinPage({
      preview: {
        title: t.joinTitle(name),
        description: offer,
        // The link as shared (a referral link keeps its code), absolute for the messengers' crawlers.
        url: joinUrl(publicUrl, program.slug, {
          ref: attribution.inviter?.referral_code,
          staff: attribution.staffId,
          // "referral" is implied by the code (resolveAttribution), not part of the link as shared.
          source: attribution.inviter && attribution.source === 'referral' ? null : attribution.source,
        }),
        image: `${publicUrl}/programs/${program.slug}/preview.png`,
        imageAlt: t.previewImageAlt(name),
        siteName: name,
      },
      icons: programIcons(program.slug),
      lang,
      programName: name,
      brand: brandColours(program.design),
      otherLangHref: otherLangHref(`/join/${program.slug}`, hiddenAttribution, lang),
      action: `/join/${program.slug}`,
      welcomeBonus: rules.welcomeBonus,
      referral:
        attribution.inviter && rules.referral.inviteeBonus > 0
          ? { bonus: rules.referral.inviteeBonus, later: rules.referral.grantOn === 'first_purchase' }
          : undefined,
      consentText: consentText(program, lang),
      terms: localized(texts.terms, lang),
      contacts: localized(texts.contacts, lang),
      values: state.values,
      errors: state.errors ?? {},
      formError: state.formError,
      hidden: { ...hiddenAttribution, lang, [TIMING_FIELD]: issueFormToken(keys.form, program.id, ctx.clock()) },
      haveCardHref: state.plastic ? `/join/${program.slug}/have-card?lang=${lang}` : undefined,
    });
  }

  /** Whether any card of the program carries a plastic number (an index lookup on (program_id, external_number)). */
  async function hasPlasticCards(programId: string): Promise<boolean> {
    const row = await db.selectFrom('card').select('id').where('program_id', '=', programId).where('external_number', 'is not', null).limit(1).executeTakeFirst();
    return row !== undefined;
  }

  async function programBySlug(slug: string) {
    return SLUG_RE.test(slug) ? findProgramBySlug(db, slug) : undefined;
  }

  /**
   * What both form POSTs (`/join/{slug}` and `/join/{slug}/have-card`) start with: the program of
   * the slug (undefined: the caller answers the 404 page), the form body, and the page's language
   * (the form's `lang`, then the query's, then the program's default).
   */
  async function joinFormRequest(request: FastifyRequest<{ Params: { slug: string }; Querystring: Query; Body: Query | undefined }>, reply: FastifyReply) {
    const program = await programBySlug(request.params.slug);
    if (!program) return undefined;
    const body: Query = request.body && typeof request.body === 'object' ? request.body : {};
    const lang = pageLang(request, reply, program.default_language, first(body.lang) ?? first(request.query.lang));
    return { program, body, lang, t: MESSAGES[lang] };
  }

  /** The form's bot checks (a filled honeypot field, a missing, forged, too fast or expired timing token): the reason to refuse, or undefined. */
  function botCheckRefusal(program: ProgramRow, body: Query, now: Date): string | undefined {
    if (text(body[HONEYPOT_FIELD], 300)) return 'honeypot';
    const timing = checkFormToken(keys.form, program.id, first(body[TIMING_FIELD]), now, joinForm);
    return timing.ok ? undefined : timing.reason;
  }

  app.get<{ Params: { slug: string }; Querystring: Query }>(
    '/join/:slug',
    { schema: { tags: ['public'], summary: 'The join page (HTML; ?ref=&staff=&utm_source=|source=&lang=); counts a view' } },
    async (request, reply) => {
      const program = await programBySlug(request.params.slug);
      if (!program) return notFoundPage(request, reply);
      const q = request.query;
      const lang = pageLang(request, reply, program.default_language, first(q.lang));
      const attribution = await resolveAttribution(db, program, {
        ref: first(q.ref),
        staff: first(q.staff),
        source: first(q.utm_source) ?? first(q.source),
      });
      if (request.method === 'GET' && !NON_HUMAN_UA.test(request.headers['user-agent'] ?? 'bot/')) {
        await countView(request, reply, program, attribution);
      }
      const plastic = await hasPlasticCards(program.id);
      return htmlReply(reply, 200, joinPage({ program, lang, attribution, plastic, values: { name: '', phone: '', email: '', birthday: '', consent: false } }));
    },
  );

  async function countView(request: FastifyRequest, reply: FastifyReply, program: ProgramRow, attribution: Attribution) {
    let visitor = request.cookies[VISITOR_COOKIE];
    if (!visitor || !/^[A-Za-z0-9_-]{22}$/.test(visitor)) {
      visitor = randomBytes(16).toString('base64url');
      reply.setCookie(VISITOR_COOKIE, visitor, { ...cookieOptions('/join'), maxAge: 180 * 24 * 60 * 60 });
    }
    const now = ctx.clock();
    const day = localDay(now, program.time_zone);
    try {
      await recordJoinView(db, {
        programId: program.id,
        day,
        visitorHash: visitorHash(keys.visitor, program.id, day, visitor),
        source: attribution.source,
        staffId: attribution.staffId,
        referrerCardId: attribution.inviter?.id ?? null,
        at: now,
      });
    } catch (error) {
      // Counting must never cost a customer the page.
      request.log.error({ err: error }, 'join view not recorded');
    }
  }

  app.post<{ Params: { slug: string }; Querystring: Query; Body: Query | undefined }>(
    '/join/:slug',
    {
      config: { rateLimit: { max: joinForm.postsPerMinute, timeWindow: 60_000 } },
      schema: { tags: ['public'], summary: 'Enroll from the join form (application/x-www-form-urlencoded); 303 to the card page' },
    },
    async (request, reply) => {
      const form = await joinFormRequest(request, reply);
      if (!form) return notFoundPage(request, reply);
      const { program, body, lang, t } = form;
      const values: JoinFormValues = {
        name: text(body.name, 300),
        phone: text(body.phone, 64),
        email: text(body.email, 300),
        birthday: text(body.birthday, 32),
        consent: first(body.consent) === 'yes',
      };
      const rawAttribution = { ref: first(body.ref), staff: first(body.staff), source: first(body.source) };
      const attribution = await resolveAttribution(db, program, rawAttribution);
      const now = ctx.clock();

      const refusal = botCheckRefusal(program, body, now);
      if (refusal) {
        request.log.info({ program: program.slug, reason: refusal }, 'join form refused');
        return htmlReply(reply, 422, joinPage({ program, lang, attribution, values, formError: t.errors.botSuspected }));
      }

      const { errors, phone, birthday } = validate(values, program, lang, localDay(now, program.time_zone));
      if (Object.keys(errors).length > 0 || !phone) {
        return htmlReply(reply, 422, joinPage({ program, lang, attribution, values, errors }));
      }

      const consent = consentText(program, lang);
      const { card, created } = await db.transaction().execute(async (trx) => {
        // Attribution again inside the transaction: the inviter or staff member may have changed.
        const current = await resolveAttribution(trx, program, rawAttribution);
        const issued = await issueCard(
          trx,
          ctx.cardChanges,
          program,
          {
            holder: { name: values.name, phone, ...(values.email ? { email: values.email } : {}), ...(birthday ? { birthday } : {}) },
            consent: values.consent,
            ...(current.inviter ? { referralCode: current.inviter.referral_code } : {}),
            ...(current.staffId ? { staffId: current.staffId } : {}),
            ...(current.source ? { source: current.source } : {}),
          },
          'join-form',
          // Self-service: bonuses stay pending until the phone answers a code or the first purchase.
          { channel: 'self_service' },
        );
        if (issued.created && values.consent) {
          const version = consentVersion(program.id, lang, consent);
          await trx
            .insertInto('consent_text')
            .values({ version, program_id: program.id, language: lang, body: consent })
            .onConflict((oc) => oc.column('version').doNothing())
            .execute();
          await trx.updateTable('card').set({ consent_version: version }).where('id', '=', issued.card.id).execute();
        }
        return issued;
      });

      // A phone that already has a card gets no bonus. Its card is shown only to a browser that
      // already holds it: a phone number is no secret, and the card page carries the barcode.
      if (created || rememberedCards(request).includes(card.public_token)) {
        rememberCard(request, reply, card.public_token);
        return reply.status(303).header('location', `/c/${card.public_token}`).header('cache-control', 'no-store').send();
      }
      return htmlReply(
        reply,
        200,
        renderNotice({
          lang,
          brand: brandColours(program.design),
          otherLangHref: otherLangHref(`/join/${program.slug}`, {}, lang),
          heading: programName(program, lang),
          title: t.alreadyTitle,
          text: t.alreadyText(programName(program, lang)),
          link: { href: `/join/${program.slug}`, label: t.backToForm },
          // The phone's owner can prove it and take the card over (enrollment/takeover.ts).
          form: ctx.verification.available
            ? { text: t.alreadyVerify, action: `/join/${program.slug}/verify`, hidden: { step: 'send', phone, lang }, button: t.sendCode }
            : undefined,
        }),
      );
    },
  );

  // ---- "I already have a card": an imported plastic card to the wallet (enrollment/claim.ts) ----

  interface HaveCardState {
    program: ProgramRow;
    lang: Lang;
    values: { number: string; phone: string };
    errors?: Partial<Record<'number' | 'phone', string>>;
    formError?: string;
  }

  function haveCardPage(state: HaveCardState): string {
    const { program, lang } = state;
    return renderHaveCardPage({
      lang,
      programName: programName(program, lang),
      brand: brandColours(program.design),
      otherLangHref: otherLangHref(`/join/${program.slug}/have-card`, {}, lang),
      action: `/join/${program.slug}/have-card`,
      joinHref: `/join/${program.slug}?lang=${lang}`,
      values: state.values,
      errors: state.errors ?? {},
      formError: state.formError,
      hidden: { lang, [TIMING_FIELD]: issueFormToken(keys.form, program.id, ctx.clock()) },
    });
  }

  app.get<{ Params: { slug: string }; Querystring: Query }>(
    '/join/:slug/have-card',
    { schema: { tags: ['public'], summary: '"I already have a card" (HTML): the plastic number and phone of an imported card' } },
    async (request, reply) => {
      const program = await programBySlug(request.params.slug);
      if (!program) return notFoundPage(request, reply);
      const lang = pageLang(request, reply, program.default_language, first(request.query.lang));
      return htmlReply(reply, 200, haveCardPage({ program, lang, values: { number: '', phone: '' } }));
    },
  );

  /**
   * `POST /join/{slug}/have-card` (form): the plastic number and the phone. No step: the form (bot
   * checks as on the join form); then, with an SMS gateway, `step=send|check` from the code page
   * (purpose `plastic`). A wrong number and a wrong phone get the same answer. Limited like the join
   * form: `joinForm.postsPerMinute` posts a minute per IP, then the 429 page.
   */
  app.post<{ Params: { slug: string }; Querystring: Query; Body: Query | undefined }>(
    '/join/:slug/have-card',
    {
      config: { rateLimit: { max: joinForm.postsPerMinute, timeWindow: 60_000 } },
      schema: { tags: ['public'], summary: 'Claim an imported plastic card (form: number, phone; then the SMS code when configured); 303 to its card page' },
    },
    async (request, reply) => {
      const form = await joinFormRequest(request, reply);
      if (!form) return notFoundPage(request, reply);
      const { program, body, lang, t } = form;
      const values = { number: text(body.number, 64), phone: text(body.phone, 64) };
      const stepField = first(body.step);
      const codeStep = ctx.verification.available && (stepField === 'send' || stepField === 'check') ? stepField : undefined;

      if (!codeStep) {
        const refusal = botCheckRefusal(program, body, ctx.clock());
        if (refusal) {
          request.log.info({ program: program.slug, reason: refusal }, 'have-card form refused');
          return htmlReply(reply, 422, haveCardPage({ program, lang, values, formError: t.errors.botSuspected }));
        }
      }
      const errors: Partial<Record<'number' | 'phone', string>> = {};
      const plasticNumber = normalizePlasticNumber(values.number);
      if (!plasticNumber) errors.number = t.haveCard.numberRequired;
      let phone: string | undefined;
      if (!values.phone) errors.phone = t.errors.phoneRequired;
      else {
        try {
          phone = normalizePhone(values.phone, program.currency);
        } catch (error) {
          if (!(error instanceof AppError)) throw error;
          errors.phone = t.errors.phoneInvalid;
        }
      }
      if (Object.keys(errors).length > 0 || !phone) return htmlReply(reply, 422, haveCardPage({ program, lang, values, errors }));

      const card = await findClaimableCard(db, program.id, plasticNumber, phone);
      if (!card) {
        // Unknown number, a number of another phone, a blocked card: one answer, nothing to tell apart.
        request.log.info({ program: program.slug }, 'have-card: no match');
        return htmlReply(reply, 422, haveCardPage({ program, lang, values, formError: t.haveCard.noMatch }));
      }

      const toCard = (token: string, verified: boolean) => {
        rememberCard(request, reply, token);
        return reply
          .status(303)
          .header('location', `/c/${token}${verified ? '?verified=1' : ''}`)
          .header('cache-control', 'no-store')
          .send();
      };

      if (!ctx.verification.available) {
        // No SMS gateway: the card page now, unverified until its first purchase at the till.
        const claimed = await db.transaction().execute((trx) => claimPlasticCard(trx, ctx.cardChanges, program, card.id, { via: null, actor: 'join-have-card' }));
        request.log.info({ program: program.slug, cardId: card.id, verified: claimed.verified }, 'plastic card claimed');
        return toCard(claimed.card.public_token, false);
      }

      const maskedPhone = formatMaskedPhone(phone);
      const hidden = { lang, number: plasticNumber, phone: values.phone };
      const page = (status: number, view: { sent: boolean; error?: string }) =>
        htmlReply(
          reply,
          status,
          renderVerifyPage({
            lang,
            programName: programName(program, lang),
            brand: brandColours(program.design),
            otherLangHref: otherLangHref(`/join/${program.slug}/have-card`, {}, lang),
            action: `/join/${program.slug}/have-card`,
            maskedPhone,
            minutes: Math.round(ctx.verification.settings.codeTtlSeconds / 60),
            hidden,
            sent: view.sent,
            error: view.error,
          }),
        );
      try {
        if (codeStep !== 'check') {
          await ctx.verification.start({
            programId: program.id,
            phone,
            purpose: 'plastic',
            ip: request.ip,
            text: (value) => t.smsText(value, programName(program, lang)),
          });
          return page(200, { sent: true });
        }
        const claimed = await ctx.verification.check({ programId: program.id, phone, purpose: 'plastic', code: text(body.code, 32) }, (trx) =>
          claimPlasticCard(trx, ctx.cardChanges, program, card.id, { via: 'otp', actor: 'join-have-card' }),
        );
        request.log.info({ program: program.slug, cardId: card.id, verified: true }, 'plastic card claimed');
        return toCard(claimed.card.public_token, true);
      } catch (error) {
        if (!(error instanceof AppError) || (error.status >= 500 && error.status !== 503)) throw error;
        const messages = t.verifyErrors;
        const message =
          error.code === 'verification_code_wrong'
            ? messages.verification_code_wrong(Number(error.details?.attemptsLeft ?? 0))
            : error.code === 'verification_send_limit'
              ? messages.verification_send_limit(Number(error.details?.retryAfterSeconds ?? 60))
              : ((messages as Record<string, unknown>)[error.code] as string | undefined) ?? error.message;
        if (error.code === 'verification_send_limit' || error.code === 'verification_locked') {
          reply.header('retry-after', String(error.details?.retryAfterSeconds ?? 60));
        }
        return page(error.status, { sent: error.code === 'verification_code_wrong', error: message });
      }
    },
  );

  /**
   * `POST /join/{slug}/verify`: a one-time code to the phone of a card (verification/
   * phone-verification.ts, purpose `join`), then the proof: the card is verified — its pending
   * bonuses released — or, when another holder may have it, taken over (enrollment/takeover.ts).
   *
   * The phone comes from `card` (the card page's token) or `phone` (typed on the join form). `step`
   * = `send` asks for a code, `check` (with `code`) confirms it. A form post answers with pages (the
   * code page, then 303 to the card page); a JSON post (`{card|phone, code?}`) answers JSON: 202
   * `{sent, expiresAt, resendAt}`, then 200 `{cardUrl, takenOver, released, balance, pendingPoints}`,
   * errors as problem details.
   */
  app.post<{ Params: { slug: string }; Body: Query | Record<string, unknown> | undefined }>(
    '/join/:slug/verify',
    {
      config: { rateLimit: { max: 30, timeWindow: 60_000 } },
      schema: { tags: ['public'], summary: 'Confirm a card\'s phone with a one-time code by SMS (form or JSON): releases pending bonuses, takes over a claimed card' },
    },
    async (request, reply) => {
      const asJson = (request.headers['content-type'] ?? '').startsWith('application/json');
      const program = await programBySlug(request.params.slug);
      if (!program) {
        if (asJson) throw notFound('program');
        return notFoundPage(request, reply);
      }
      const body = (request.body && typeof request.body === 'object' ? request.body : {}) as Record<string, unknown>;
      const lang = pageLang(request, reply, program.default_language, first(body.lang));
      const t = MESSAGES[lang];
      const cardToken = first(body.card);
      const typedPhone = text(body.phone, 64);
      const code = text(body.code, 32);
      const step = asJson ? (code ? 'check' : 'send') : first(body.step) === 'check' ? 'check' : 'send';
      const hidden: Record<string, string> = { lang, ...(cardToken && TOKEN_RE.test(cardToken) ? { card: cardToken } : { phone: typedPhone }) };

      const page = (status: number, view: { sent: boolean; error?: string; maskedPhone?: string }) =>
        htmlReply(
          reply,
          status,
          renderVerifyPage({
            lang,
            programName: programName(program, lang),
            brand: brandColours(program.design),
            otherLangHref: otherLangHref(`/join/${program.slug}`, {}, lang),
            action: `/join/${program.slug}/verify`,
            maskedPhone: view.maskedPhone ?? '',
            minutes: Math.round(ctx.verification.settings.codeTtlSeconds / 60),
            hidden,
            sent: view.sent,
            error: view.error,
          }),
        );
      const refusal = (error: AppError, maskedPhone?: string) => {
        if (asJson) throw error;
        const messages = t.verifyErrors;
        const message =
          error.code === 'verification_code_wrong'
            ? messages.verification_code_wrong(Number(error.details?.attemptsLeft ?? 0))
            : error.code === 'verification_send_limit'
              ? messages.verification_send_limit(Number(error.details?.retryAfterSeconds ?? 60))
              : ((messages as Record<string, unknown>)[error.code] as string | undefined) ?? error.message;
        if (error.code === 'verification_send_limit' || error.code === 'verification_locked') {
          reply.header('retry-after', String(error.details?.retryAfterSeconds ?? 60));
        }
        // The code field stays while the code can still be right.
        return page(error.status, { sent: error.code === 'verification_code_wrong', error: message, maskedPhone });
      };

      try {
        // Whose phone: the card page's card, or the number typed on the join form.
        let phone: string;
        let heldToken: string | undefined;
        if (cardToken && TOKEN_RE.test(cardToken)) {
          const held = await findCardByPublicToken(db, cardToken);
          if (!held || held.program_id !== program.id) throw notFound('card');
          phone = held.phone;
          heldToken = held.public_token;
        } else {
          phone = normalizePhone(typedPhone, program.currency);
          if (!(await findCardByPhone(db, program.id, phone))) throw notFound('card');
        }
        const maskedPhone = formatMaskedPhone(phone);
        try {
          if (step === 'send') {
            const started = await ctx.verification.start({
              programId: program.id,
              phone,
              purpose: 'join',
              ip: request.ip,
              text: (value) => t.smsText(value, programName(program, lang)),
            });
            if (asJson) return reply.status(202).send({ sent: true, expiresAt: started.expiresAt.toISOString(), resendAt: started.resendAt.toISOString() });
            return page(200, { sent: true, maskedPhone });
          }
          const claimed = await ctx.verification.check({ programId: program.id, phone, purpose: 'join', code }, (trx) =>
            claimCardByPhone(trx, ctx.cardChanges, program, phone, { heldToken, actor: 'join-verify' }),
          );
          request.log.info({ program: program.slug, cardId: claimed.card.id, takenOver: claimed.takenOver, released: claimed.released }, 'phone verified');
          const cardUrl = `/c/${claimed.card.public_token}`;
          if (asJson) {
            return reply.status(200).send({
              cardUrl,
              takenOver: claimed.takenOver,
              released: claimed.released,
              balance: claimed.card.balance,
              pendingPoints: claimed.card.pending_points,
            });
          }
          rememberCard(request, reply, claimed.card.public_token);
          return reply.status(303).header('location', `${cardUrl}?verified=1`).header('cache-control', 'no-store').send();
        } catch (error) {
          if (error instanceof AppError && error.status < 500 && !asJson) return refusal(error, maskedPhone);
          if (error instanceof AppError && error.status === 503 && !asJson) return refusal(error, maskedPhone);
          throw error;
        }
      } catch (error) {
        if (error instanceof AppError && (error.status < 500 || error.status === 503)) return refusal(error);
        throw error;
      }
    },
  );

  app.get<{ Params: { cardToken: string }; Querystring: Query }>(
    '/c/:cardToken',
    { schema: { tags: ['public'], summary: 'The card page (HTML): wallet buttons by device, balance, tier, barcode, referral link' } },
    async (request, reply) => {
      const { cardToken } = request.params;
      const card = TOKEN_RE.test(cardToken) ? await findCardByPublicToken(db, cardToken) : undefined;
      const program = card ? await findProgram(db, card.program_id) : undefined;
      // An erased card's page is gone like one that never existed (the link may have been shared).
      if (!card || !program || card.status === 'erased') return notFoundPage(request, reply);
      const lang = pageLang(request, reply, program.default_language, first(request.query.lang));
      const t = MESSAGES[lang];
      const rules = program.rules as LoyaltyRules;
      const platform = detectPlatform(request.headers['user-agent']);
      const urls = cardUrls(publicUrl, card);
      const referral = referralUrl(publicUrl, program, card);
      rememberCard(request, reply, card.public_token);
      // The migration funnel's "link opened" step: the first view per card, once (src/imports/funnel.ts).
      await db
        .insertInto('card_page_view')
        .values({ program_id: card.program_id, card_id: card.id, first_at: ctx.clock() })
        .onConflict((oc) => oc.columns(['program_id', 'card_id']).doNothing())
        .execute();
      const verifyForm =
        ctx.verification.available && card.status === 'active'
          ? { action: `/join/${program.slug}/verify`, maskedPhone: formatMaskedPhone(card.phone), hidden: { step: 'send', card: card.public_token, lang } }
          : undefined;
      return htmlReply(
        reply,
        200,
        renderCardPage({
          lang,
          programName: programName(program, lang),
          brand: brandColours(program.design),
          otherLangHref: otherLangHref(`/c/${card.public_token}`, {}, lang),
          holderName: card.holder_name,
          balance: card.balance,
          tierName: rules.tiers.find((tier) => tier.code === card.tier)?.name[lang] ?? card.tier,
          number: card.number,
          blocked: card.status !== 'active',
          platform,
          googleEnabled: ctx.links.googleEnabled,
          pkpassHref: `/c/${card.public_token}/card.pkpass`,
          icons: programIcons(program.slug),
          manifestHref: `/c/${card.public_token}/manifest.webmanifest?lang=${lang}`,
          googleHref: `/c/${card.public_token}/google`,
          pageQrSvg: platform === 'desktop' ? await qrSvgInline(urls.installUrl, t.pageQrLabel) : undefined,
          barcodeSvg: await qrSvgInline(card.number, t.barcodeLabel(card.number)),
          pending: { points: card.pending_points, verify: verifyForm },
          notice: first(request.query.verified) === '1' ? t.verifiedNotice : undefined,
          unverifiedClaim: (await hasUnverifiedClaim(db, program.id, card.id)) ? t.haveCard.unverifiedNotice : undefined,
          referral:
            card.status === 'active'
              ? {
                  url: referral,
                  inviterBonus: rules.referral.inviterBonus,
                  inviteeBonus: rules.referral.inviteeBonus,
                  shareText: localized((program.texts as Texts).referral, lang) ?? t.shareText(programName(program, lang)),
                }
              : null,
        }),
      );
    },
  );

  await app.register(qrRoutes, { ctx });
};

const QrParams = Type.Object({ slug: Type.String({ maxLength: 63 }) });
const QrQuery = Type.Object({
  staff: Type.Optional(Uuid),
  source: Type.Optional(Type.String({ pattern: SOURCE_PATTERN, description: 'Source tag, e.g. poster, till, instagram' })),
  size: Type.Optional(
    Type.Integer({ minimum: QR_SIZE.min, maximum: QR_SIZE.max, default: QR_SIZE.default, description: 'Pixels (PNG) or SVG width/height' }),
  ),
});

/** QR codes of the join link, sized for print. */
const qrRoutes: FastifyPluginAsyncTypebox<{ ctx: AppContext }> = async (app, { ctx }) => {
  async function target(slug: string, query: { staff?: string; source?: string }) {
    const program = SLUG_RE.test(slug) ? await findProgramBySlug(ctx.db, slug) : undefined;
    if (!program) throw notFound('program');
    if (query.staff && !(await findActiveStaff(ctx.db, program.id, query.staff))) throw notFound('staff', 'Staff member not found');
    return joinUrl(ctx.links.publicUrl, program.slug, { staff: query.staff, source: query.source });
  }
  const cacheControl = 'public, max-age=86400';
  const images = new WebAppImages();
  async function programOr404(slug: string) {
    const program = SLUG_RE.test(slug) ? await findProgramBySlug(ctx.db, slug) : undefined;
    if (!program) throw notFound('program');
    return program;
  }

  // The program's icon (favicon, home-screen icon): 180 (Apple touch icon), 192 and 512 pixels.
  for (const size of ICON_SIZES) {
    app.get(
      `/programs/:slug/icon-${size}.png`,
      { schema: { tags: ['public'], summary: `The program's icon, ${size} × ${size} PNG (favicon, home screen)`, params: QrParams } },
      async (request, reply) => {
        const program = await programOr404(request.params.slug);
        const png = await images.get(program, size, () => drawIcon(ctx.db, program, size));
        return reply.type('image/png').header('cache-control', 'public, max-age=3600').send(png);
      },
    );
  }
  app.get(
    '/programs/:slug/preview.png',
    { schema: { tags: ['public'], summary: 'Link preview of the join page (Open Graph image, 1200 × 630 PNG)', params: QrParams } },
    async (request, reply) => {
      const program = await programOr404(request.params.slug);
      const png = await images.get(program, 'preview', () => drawPreview(ctx.db, program));
      return reply.type('image/png').header('cache-control', 'public, max-age=3600').send(png);
    },
  );

  app.get(
    '/programs/:slug/qr.svg',
    { schema: { tags: ['public'], summary: 'QR code of the join link (SVG)', params: QrParams, querystring: QrQuery } },
    async (request, reply) => {
      const url = await target(request.params.slug, request.query);
      const svg = await ctx.qr.svg(url, request.query.size ?? QR_SIZE.default);
      return reply.type('image/svg+xml; charset=utf-8').header('cache-control', cacheControl).send(`<?xml version="1.0" encoding="UTF-8"?>\n${svg}`);
    },
  );

  app.get(
    '/programs/:slug/qr.png',
    { schema: { tags: ['public'], summary: `QR code of the join link (PNG, ?size= pixels, at most ${QR_SIZE.max})`, params: QrParams, querystring: QrQuery } },
    async (request, reply) => {
      const url = await target(request.params.slug, request.query);
      // Drawn on the renderer's worker thread, cached, at most 16 waiting (enrollment/qr.ts).
      const png = await ctx.qr.png(url, request.query.size ?? QR_SIZE.default);
      return reply.type('image/png').header('cache-control', cacheControl).send(png);
    },
  );
};
