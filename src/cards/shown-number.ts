import type { CardRow } from '../db/schema.js';

// What a wallet card prints and encodes in its barcode. Wallet barcodes are encoded as
// iso-8859-1 with an ASCII message (Apple: PassKit Package Format Reference, `barcodes`), so a
// plastic number outside printable ASCII is not shown.
const PRINTABLE_ASCII = /^[\x20-\x7e]{1,64}$/;

/**
 * The number a card's pass and Google object show and encode: the wallet card's own number, or —
 * when the program shows the familiar plastic number (`design.showPlasticNumber`, issue #12) and the
 * card was imported with one — the plastic number, so a till that only knows the plastic cards still
 * scans it (`GET /cards/by-barcode/{value}` finds the card by either number).
 */
export function shownCardNumber(card: Pick<CardRow, 'number' | 'external_number'>, design: { showPlasticNumber?: boolean } | null | undefined): string {
  if (design?.showPlasticNumber && card.external_number && PRINTABLE_ASCII.test(card.external_number)) return card.external_number;
  return card.number;
}
