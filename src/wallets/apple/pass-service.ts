import { shownCouponTexts } from '../../coupons/display.js';
import { shownCardNumber } from '../../cards/shown-number.js';
import type { Db } from '../../db/database.js';
import type { CardRow, ProgramRow } from '../../db/schema.js';
import type { LoyaltyRules } from '../../loyalty/rules.js';
import { referralUrl } from '../../cards/dto.js';
import { DEFAULT_DESIGN } from '../../programs/service.js';
import type { Design, Texts } from '../../programs/schemas.js';
import { findProgram, listProgramImages } from '../../programs/repository.js';
import type { AppleSigningMaterial } from './certificates.js';
import type { StoreCardPassInput } from './pass/types.js';
import { mechanicDisplay } from '../mechanic-display.js';
import { stampStrips } from '../stamp-strip.js';

export interface PassPackager {
  build(input: StoreCardPassInput, signingTime?: Date): Promise<Buffer>;
}

/**
 * A small LRU bounded by entry count and by bytes. Map keeps insertion order, so the first key is
 * the least recently used. An entry's size counts once its pass is built.
 */
class PassCache {
  readonly #entries = new Map<string, { pass: Promise<Buffer>; bytes: number }>();
  #bytes = 0;
  constructor(
    private readonly maxEntries: number,
    private readonly maxBytes: number,
  ) {}
  get(key: string): Promise<Buffer> | undefined {
    const entry = this.#entries.get(key);
    if (entry) {
      this.#entries.delete(key);
      this.#entries.set(key, entry);
    }
    return entry?.pass;
  }
  set(key: string, pass: Promise<Buffer>) {
    this.delete(key);
    const entry = { pass, bytes: 0 };
    this.#entries.set(key, entry);
    pass.then(
      (buffer) => {
        if (this.#entries.get(key) !== entry) return;
        entry.bytes = buffer.length;
        this.#bytes += buffer.length;
        this.#evict();
      },
      // A failed build must not stay cached.
      () => {
        if (this.#entries.get(key) === entry) this.delete(key);
      },
    );
    this.#evict();
  }
  delete(key: string) {
    const entry = this.#entries.get(key);
    if (!entry) return;
    this.#bytes -= entry.bytes;
    this.#entries.delete(key);
  }
  #evict() {
    while (this.#entries.size > this.maxEntries || (this.#bytes > this.maxBytes && this.#entries.size > 1)) {
      this.delete(this.#entries.keys().next().value!);
    }
  }
}

/**
 * Builds a card's signed .pkpass from the program and the card, caching it per card version
 * (serial + update tag, reference checklist "Operations"), so repeated downloads and device
 * refetches after one push sign once.
 */
export class PassService {
  readonly #passes: PassCache;
  readonly #images = new Map<string, { version: number; images: Promise<Record<string, Buffer>> }>();
  readonly #programs = new Map<string, { version: string; program: Promise<ProgramRow | undefined> }>();

  constructor(
    private readonly db: Db,
    private readonly packager: PassPackager,
    private readonly material: AppleSigningMaterial,
    private readonly publicUrl: string,
    // The cache serves the few downloads of one version that arrive together (a holder's iPhone and
    // Watch, a retried download); a campaign's passes are each fetched once, so a large cache only
    // held memory (bench:campaign: ~60 MB at 1,000 passes). Bounded by bytes as well as entries.
    options: { cacheSize?: number; cacheBytes?: number } = {},
  ) {
    this.#passes = new PassCache(options.cacheSize ?? 1000, options.cacheBytes ?? 8 * 1024 * 1024);
  }

  get passTypeIdentifier() {
    return this.material.passTypeIdentifier;
  }

  get webServiceURL() {
    return `${this.publicUrl}/apple`;
  }

  async passFor(card: CardRow, program: ProgramRow): Promise<Buffer> {
    const key = `${card.apple_serial}:${card.update_tag}`;
    let pass = this.#passes.get(key);
    if (!pass) {
      pass = this.programImages(program.id, program.image_version).then((images) => this.packager.build(this.passInput(card, program, images)));
      this.#passes.set(key, pass);
    }
    return pass;
  }

  /**
   * The voided pass of a taken-over card's old serial (retired_apple_pass): the old serial and
   * token, `voided: true`, no balance, no promo, no referral link. Its devices fetch it once after
   * the takeover's push; Wallet then shows the pass as void.
   */
  async voidedPassFor(card: CardRow, program: ProgramRow, retired: { serial_number: string; auth_token: string; number: string }): Promise<Buffer> {
    const key = `void:${retired.serial_number}`;
    let pass = this.#passes.get(key);
    if (!pass) {
      pass = this.programImages(program.id, program.image_version).then((images) => {
        const input = this.passInput(card, program, images);
        return this.packager.build({
          ...input,
          serialNumber: retired.serial_number,
          authenticationToken: retired.auth_token,
          card: { ...input.card, number: retired.number, balance: 0, pendingPoints: 0 },
          barcode: { ...input.barcode, message: retired.number },
          frontPromo: undefined,
          back: { contacts: input.back?.contacts, terms: input.back?.terms },
          voided: true,
        });
      });
      this.#passes.set(key, pass);
    }
    return pass;
  }

  /**
   * The program row at `version` (its `xmin`, read with the card): read from the database once per
   * version, so the downloads of a campaign's passes do not each read and parse the program.
   */
  programAt(programId: string, version: string): Promise<ProgramRow | undefined> {
    const cached = this.#programs.get(programId);
    if (cached?.version === version) return cached.program;
    const entry = { version, program: findProgram(this.db, programId) };
    const forget = () => {
      if (this.#programs.get(programId) === entry) this.#programs.delete(programId);
    };
    entry.program.then((row) => row ?? forget(), forget);
    this.#programs.set(programId, entry);
    return entry.program;
  }

  /**
   * Drops what is cached of a program (its row and images). Correctness never depends on it: both
   * caches are keyed by the row's version. It frees the old versions at once, in every instance:
   * `buildApp` calls it for each `program_changed` notification (db/notifications.ts).
   */
  forgetProgram(programId: string) {
    this.#images.delete(programId);
    this.#programs.delete(programId);
  }

  /** Drops every cached program (after the notification connection was lost for a while). */
  forgetAllPrograms() {
    this.#images.clear();
    this.#programs.clear();
  }

  /**
   * The program's images at `version` (`program.image_version`, which every image change bumps in
   * its transaction). Keyed by the version, not only the program: another instance that saved a new
   * logo bumped it, so the first pass signed here with the new version reads the new images
   * (issue #13: the cache was cleared only in the process that saved the image).
   */
  private programImages(programId: string, version: number): Promise<Record<string, Buffer>> {
    const cached = this.#images.get(programId);
    if (cached && cached.version >= version) return cached.images;
    const images = listProgramImages(this.db, programId).then((rows) =>
      // Google's class logo is stored with the program's images but is not part of the pass.
      Object.fromEntries(rows.filter((r) => !r.name.startsWith('google-')).map((r) => [r.name, Buffer.from(r.png)])),
    );
    const entry = { version, images };
    images.catch(() => {
      if (this.#images.get(programId) === entry) this.#images.delete(programId);
    });
    this.#images.set(programId, entry);
    return images;
  }

  passInput(card: CardRow, program: ProgramRow, images: Record<string, Buffer>): StoreCardPassInput {
    const design = { ...DEFAULT_DESIGN, ...(program.design as Partial<Design>) };
    const texts = program.texts as Texts;
    const rules = program.rules as LoyaltyRules;
    const tier = rules.tiers.find((t) => t.code === card.tier);
    const apple = program.apple as { organizationName?: string };
    const display = mechanicDisplay(card, program);
    let mechanic: StoreCardPassInput['mechanic'];
    if (display.kind === 'discount') mechanic = { kind: 'discount', percent: display.percentText, next: display.next };
    if (display.kind === 'stamps') {
      mechanic = { kind: 'stamps', value: display.value, reward: display.reward };
      // The stamps are the strip: rendered per count (cached per program version and count), they
      // replace the strip family, uploaded or default (mergeImages).
      images = { ...images, ...stampStrips.passImages(display.style, display.count) };
    }
    const coupons = shownCouponTexts(card.coupons, new Date());
    return {
      passTypeIdentifier: this.material.passTypeIdentifier,
      teamIdentifier: this.material.teamIdentifier,
      organizationName: apple.organizationName ?? program.name,
      serialNumber: card.apple_serial,
      authenticationToken: card.apple_auth_token,
      webServiceURL: this.webServiceURL,
      defaultLanguage: program.default_language,
      description: design.description ?? { ru: `Карта лояльности ${program.name}`, en: `${program.name} loyalty card` },
      logoText: design.logoText ?? { ru: program.name, en: program.name },
      colors: { background: design.backgroundColor, foreground: design.foregroundColor, label: design.labelColor },
      card: {
        number: shownCardNumber(card, design),
        holderName: card.holder_name,
        balance: card.balance,
        pendingPoints: card.pending_points,
        tierName: tier?.name ?? { ru: card.tier, en: card.tier },
      },
      mechanic,
      barcode: { message: shownCardNumber(card, design), format: 'PKBarcodeFormatQR' },
      frontPromo: card.promo ?? undefined,
      back: {
        contacts: texts.contacts,
        terms: texts.terms,
        promo: texts.promo,
        coupons: coupons.list,
        latestCoupon: coupons.latest,
        referral: {
          text: texts.referral ?? {
            ru: 'Пригласите друга по ссылке — бонусы получите вы оба',
            en: 'Invite a friend with this link: you both get bonus points',
          },
          url: referralUrl(this.publicUrl, program, card),
        },
      },
      locations: program.locations as StoreCardPassInput['locations'],
      // Blocked or erased (privacy/erasure.ts): the pass stays on the device, marked void.
      voided: card.status !== 'active',
      images,
    };
  }
}
