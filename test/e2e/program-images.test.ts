import { crc32, deflateSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodePng } from '../../scripts/make-default-images.js';
import { createProgramWithKeys, startTestApp, type TestApp } from '../support/app.js';
import { CabinetClient, createStaff, signIn } from '../support/cabinet.js';
import { TEST_DATABASE_KIND } from '../support/database.js';
import { unpackPkpass } from '../support/pkpass.js';
import { decodePng, PNG_SIGNATURE } from '../support/png.js';

/**
 * Program images are decoded, not sniffed (issue #11: a PNG header declaring 50,000 × 50,000 pixels,
 * or the PNG signature followed by PHP, was accepted, built into every pass and served publicly).
 */

const solid = (w: number, h: number) => encodePng(w, h, Uint8Array.from({ length: w * h * 4 }, (_, i) => [10, 200, 30, 255][i % 4]));

function chunk(type: string, data: Buffer): Buffer {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body) >>> 0);
  return Buffer.concat([length, body, crc]);
}

/** A few hundred bytes that claim `width` × `height` RGBA pixels (the IDAT holds a handful of rows). */
function bomb(width: number, height: number): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 6, 0, 0, 0], 8);
  return Buffer.concat([PNG_SIGNATURE, chunk('IHDR', ihdr), chunk('IDAT', deflateSync(Buffer.alloc(4096))), chunk('IEND', Buffer.alloc(0))]);
}

/** Inserts a chunk right after IHDR. */
function withChunk(png: Buffer, type: string, data: Buffer): Buffer {
  const afterIhdr = 8 + 12 + 13;
  return Buffer.concat([png.subarray(0, afterIhdr), chunk(type, data), png.subarray(afterIhdr)]);
}

describe(`program images: decoded, bounded, re-encoded (${TEST_DATABASE_KIND} database)`, () => {
  let t: TestApp;
  let programId: string;
  let slug: string;
  let admin: Record<string, string>;
  let cardToken: string;

  beforeAll(async () => {
    t = await startTestApp({ runWorkers: false });
    const p = await createProgramWithKeys(t.app, 'images-shop');
    programId = p.program.id;
    slug = p.program.slug;
    admin = p.as('admin');
    const card = await t.app.inject({ method: 'POST', url: '/api/v1/cards', headers: p.as('pos'), payload: { holder: { name: 'Img', phone: '+79160000777' } } });
    cardToken = new URL(card.json().installUrl).pathname.split('/').pop()!;
  });
  afterAll(async () => {
    await t?.close();
  });

  const put = (name: string, png: Buffer) =>
    t.app.inject({ method: 'PUT', url: `/api/v1/programs/${programId}/images/${name}`, headers: { ...admin, 'content-type': 'image/png' }, payload: png });
  const stored = async (name: string) =>
    (await t.database.handle.db.selectFrom('program_image').select('png').where('program_id', '=', programId).where('name', '=', `${name}.png`).executeTakeFirst())?.png;

  it('refuses a PNG signature followed by something else (PHP), and a PNG with a broken checksum, storing nothing', async () => {
    const php = Buffer.concat([PNG_SIGNATURE, Buffer.from('<?php system($_GET["c"]); ?>')]);
    const phpWithHeader = Buffer.concat([bomb(10, 10).subarray(0, 33), Buffer.from('<?php echo 1; ?>'.repeat(10))]);
    const broken = solid(20, 20);
    broken[broken.length - 20] ^= 0xff; // inside IDAT: the CRC no longer matches
    for (const body of [php, phpWithHeader, broken]) {
      const res = await put('icon', body);
      expect(res.statusCode, res.body).toBe(415);
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(res.json().code).toBe('png_required');
    }
    expect(await stored('icon')).toBeUndefined();
  });

  it('refuses a decompression bomb from its header, before inflating it', async () => {
    const res = await put('strip@3x', bomb(50_000, 50_000));
    expect(res.statusCode).toBe(422);
    expect(res.json()).toMatchObject({ code: 'image_dimensions', width: 50_000, height: 50_000, maxWidth: 1125, maxHeight: 369 });
    expect(await stored('strip@3x')).toBeUndefined();
  });

  it("keeps each image within Apple's and Google's sizes", async () => {
    const cases: [string, number, number, number][] = [
      ['icon', 29, 29, 204],
      ['icon', 30, 29, 422],
      ['icon@3x', 87, 87, 204],
      ['icon@3x', 88, 88, 422],
      ['logo', 160, 50, 204],
      ['logo', 160, 51, 422],
      ['logo@2x', 320, 100, 204],
      ['strip', 375, 123, 204],
      ['strip@2x', 751, 246, 422],
      ['google-logo', 660, 660, 204],
      ['google-logo', 600, 600, 422],
      ['google-logo', 700, 660, 422],
    ];
    for (const [name, w, h, status] of cases) {
      const res = await put(name, solid(w, h));
      expect({ name, w, h, status: res.statusCode }).toEqual({ name, w, h, status });
    }
  });

  it('stores a fresh encoding: extra chunks never reach a pass or a public URL; bytes after the image are refused', async () => {
    const original = solid(160, 50);
    const polyglot = Buffer.concat([original, Buffer.from('<?php echo "after IEND"; ?>')]);
    expect((await put('logo', polyglot)).statusCode).toBe(415);
    const tampered = withChunk(original, 'tEXt', Buffer.from('Comment\0<script>alert(1)</script><?php echo 1; ?>'));
    expect((await put('logo', tampered)).statusCode).toBe(204);
    const saved = Buffer.from((await stored('logo'))!);
    expect(saved.includes(Buffer.from('<script>'))).toBe(false);
    expect(saved.includes(Buffer.from('<?php'))).toBe(false);
    const image = decodePng(saved);
    expect([image.width, image.height, image.level(5, 5)]).toEqual([160, 50, 10]);
    // The pass carries the re-encoded bytes.
    const pass = await t.app.inject({ method: 'GET', url: `/c/${cardToken}/card.pkpass` });
    expect(unpackPkpass(pass.rawPayload)['logo.png'].equals(saved)).toBe(true);
    // And the public Google logo too.
    const square = withChunk(solid(700, 700), 'tEXt', Buffer.from('Comment\0secret'));
    expect((await put('google-logo', square)).statusCode).toBe(204);
    const logo = await t.app.inject({ method: 'GET', url: `/programs/${slug}/google-logo.png` });
    expect(logo.statusCode).toBe(200);
    expect(logo.rawPayload.includes(Buffer.from('secret'))).toBe(false);
    expect(decodePng(logo.rawPayload).width).toBe(700);
  });

  it('the cabinet upload goes through the same checks and explains the size', async () => {
    await createStaff(t.app, programId, { name: 'Owner', role: 'owner', email: 'images-owner@example.com', password: 'owner-password-1' });
    const owner: CabinetClient = await signIn(t.app, 'images-owner@example.com', 'owner-password-1');
    await owner.get('/app/design');
    const csrf = owner.csrf();
    const boundary = '----imagesTest';
    const upload = (name: string, png: Buffer) =>
      t.app.inject({
        method: 'POST',
        url: '/app/design/images',
        headers: { cookie: [...owner.cookies].map(([k, v]) => `${k}=${v}`).join('; '), 'content-type': `multipart/form-data; boundary=${boundary}` },
        payload: Buffer.concat([
          Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="_csrf"\r\n\r\n${csrf}\r\n--${boundary}\r\nContent-Disposition: form-data; name="image"\r\n\r\n${name}\r\n`),
          Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="x.png"\r\nContent-Type: image/png\r\n\r\n`),
          png,
          Buffer.from(`\r\n--${boundary}--\r\n`),
        ]),
      });
    const before = await stored('strip');
    const tooBig = await upload('strip', bomb(40_000, 40_000));
    expect(tooBig.statusCode).toBe(422);
    expect(tooBig.headers['content-type']).toMatch(/^text\/html/);
    expect(tooBig.body).toContain('375×123');
    const fake = await upload('strip', Buffer.concat([PNG_SIGNATURE, Buffer.from('<?php ?>')]));
    expect(fake.statusCode).toBe(422);
    expect(await stored('strip')).toEqual(before);
    expect((await upload('strip', solid(375, 123))).statusCode).toBe(303);
    expect(decodePng(Buffer.from((await stored('strip'))!)).width).toBe(375);
  });
});
