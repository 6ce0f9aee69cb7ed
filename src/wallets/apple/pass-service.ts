import type { Db } from '../../db/database.js';
import type { CardRow, ProgramRow } from '../../db/schema.js';
import type { LoyaltyRules } from '../../loyalty/rules.js';
import { referralUrl } from '../../cards/dto.js';
import { DEFAULT_DESIGN } from '../../programs/service.js';
import type { Design, Texts } from '../../programs/schemas.js';
import { listProgramImages } from '../../programs/repository.js';
import type { AppleSigningMaterial } from './certificates.js';
import type { StoreCardPassInput } from './pass/types.js';

export interface PassPackager {
  build(input: StoreCardPassInput, signingTime?: Date): Promise<Buffer>;
}

/** A small LRU: Map keeps insertion order, so the first key is the least recently used. */
class LruCache<V> {
  readonly #entries = new Map<string, V>();
  constructor(private readonly capacity: number) {}
  get(key: string): V | undefined {
    const value = this.#entries.get(key);
    if (value !== undefined) {
      this.#entries.delete(key);
      this.#entries.set(key, value);
    }
    return value;
  }
  set(key: string, value: V) {
    this.#entries.delete(key);
    this.#entries.set(key, value);
    if (this.#entries.size > this.capacity) this.#entries.delete(this.#entries.keys().next().value!);
  }
  deleteWhere(predicate: (key: string) => boolean) {
    for (const key of [...this.#entries.keys()]) if (predicate(key)) this.#entries.delete(key);
  }
}

/**
 * Builds a card's signed .pkpass from the program and the card, caching it per card version
 * (serial + update tag, reference checklist "Operations"), so repeated downloads and device
 * refetches after one push sign once.
 */
export class PassService {
  readonly #passes: LruCache<Promise<Buffer>>;
  readonly #images = new Map<string, Promise<Record<string, Buffer>>>();

  constructor(
    private readonly db: Db,
    private readonly packager: PassPackager,
    private readonly material: AppleSigningMaterial,
    private readonly publicUrl: string,
    options: { cacheSize?: number } = {},
  ) {
    this.#passes = new LruCache(options.cacheSize ?? 1000);
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
      pass = this.programImages(program.id).then((images) => this.packager.build(this.passInput(card, program, images)));
      // A failed build must not stay cached.
      pass.catch(() => this.#passes.deleteWhere((k) => k === key));
      this.#passes.set(key, pass);
    }
    return pass;
  }

  /** Called after a program's images change (the cards' update tags move too). */
  forgetProgramImages(programId: string) {
    this.#images.delete(programId);
  }

  private programImages(programId: string): Promise<Record<string, Buffer>> {
    let images = this.#images.get(programId);
    if (!images) {
      images = listProgramImages(this.db, programId).then((rows) =>
        // Google's class logo is stored with the program's images but is not part of the pass.
        Object.fromEntries(rows.filter((r) => !r.name.startsWith('google-')).map((r) => [r.name, Buffer.from(r.png)])),
      );
      images.catch(() => this.#images.delete(programId));
      this.#images.set(programId, images);
    }
    return images;
  }

  passInput(card: CardRow, program: ProgramRow, images: Record<string, Buffer>): StoreCardPassInput {
    const design = { ...DEFAULT_DESIGN, ...(program.design as Partial<Design>) };
    const texts = program.texts as Texts;
    const rules = program.rules as LoyaltyRules;
    const tier = rules.tiers.find((t) => t.code === card.tier);
    const apple = program.apple as { organizationName?: string };
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
        number: card.number,
        holderName: card.holder_name,
        balance: card.balance,
        tierName: tier?.name ?? { ru: card.tier, en: card.tier },
      },
      barcode: { message: card.number, format: 'PKBarcodeFormatQR' },
      frontPromo: card.promo ?? undefined,
      back: {
        contacts: texts.contacts,
        terms: texts.terms,
        promo: texts.promo,
        referral: {
          text: texts.referral ?? {
            ru: 'Пригласите друга по ссылке — бонусы получите вы оба',
            en: 'Invite a friend with this link: you both get bonus points',
          },
          url: referralUrl(this.publicUrl, program, card),
        },
      },
      locations: program.locations as StoreCardPassInput['locations'],
      voided: card.status === 'blocked',
      images,
    };
  }
}
