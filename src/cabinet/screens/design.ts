import type { FastifyReply, FastifyRequest } from 'fastify';
import { Value } from '@sinclair/typebox/value';
import type { ProgramRow } from '../../db/schema.js';
import { contrastRatio } from '../../enrollment/pages.js';
import { AppError } from '../../http/errors.js';
import { html, raw } from '../../http/html.js';
import type { LoyaltyRules } from '../../loyalty/rules.js';
import { IMAGE_NAMES, imageLimits, isPng, MAX_IMAGE_BYTES, saveProgramImage } from '../../programs/images.js';
import { listProgramImages } from '../../programs/repository.js';
import { DesignSchema, type Design } from '../../programs/schemas.js';
import { DEFAULT_DESIGN, getProgramOr404, updateProgram } from '../../programs/service.js';
import { DEFAULT_PASS_IMAGES_DIR, loadDefaultImages } from '../../wallets/apple/pass/build-pkpass.js';
import { formatNumber, texts, type Lang } from '../i18n.js';
import { formBody, notFoundError, type Screen } from '../kit.js';
import { CSRF_FIELD, csrfInput, errorSummary, field, formText, notice, type FieldErrors } from '../layout.js';
import { isUploadedFile } from '../multipart.js';

/**
 * «Дизайн карты» (owner): colours and texts of the card with a live preview of the Apple Wallet
 * and Google Wallet cards (HTML/CSS mocks that follow the fields as you type, via the cabinet
 * script), and PNG image upload. Saving goes through `updateProgram` / `saveProgramImage`, which
 * send every card down the update path: the next pass each phone fetches shows the change.
 */
const T = texts({
  ru: {
    title: 'Дизайн карты',
    saved: 'Сохранено. Карты в телефонах обновятся в ближайшие минуты.',
    uploaded: 'Изображение загружено. Карты в телефонах обновятся в ближайшие минуты.',
    colours: 'Цвета и тексты',
    background: 'Цвет фона',
    foreground: 'Цвет значений',
    label: 'Цвет подписей',
    colourHint: 'В формате #rrggbb, например #1f2a44.',
    pick: (what: string) => `${what}: выбрать в палитре`,
    logoText: (l: string) => `Текст рядом с логотипом (${l})`,
    description: (l: string) => `Описание карты для VoiceOver (${l})`,
    showPlasticNumber: 'Показывать на картах номер пластиковой карты (у импортированных карт)',
    showPlasticNumberHint: 'Держатель и касса увидят привычный номер; штрихкод карты будет кодировать его же.',
    ru: 'рус.',
    en: 'англ.',
    save: 'Сохранить',
    preview: 'Предпросмотр',
    previewHint: 'Так карта будет выглядеть в приложениях. Предпросмотр меняется, пока вы вводите значения.',
    apple: 'Apple Wallet',
    google: 'Google Кошелёк',
    tier: 'Уровень',
    points: 'Баллы',
    holder: 'Владелец',
    number: 'Номер карты',
    sampleName: 'Анна Иванова',
    images: 'Изображения (PNG)',
    imagesHint: 'Логотип (до 160×50 точек), иконка (29×29), полоса под балансом (375×123); версии @2x и @3x — в 2 и 3 раза больше. google-logo — квадрат от 660×660 для Google. Не больше 1 МБ.',
    image: 'Изображение',
    file: 'Файл PNG',
    upload: 'Загрузить',
    current: 'Сейчас на карте',
    lowContrast: 'Цвет значений плохо читается на этом фоне (контраст ниже 4,5:1).',
    errors: {
      colour: 'Цвет в формате #rrggbb.',
      bothLanguages: 'Заполните оба языка или оставьте оба поля пустыми.',
      png: 'Выберите файл PNG.',
      tooLarge: 'Файл больше 1 МБ.',
      dimensions: (w: number, h: number, min?: number) =>
        min ? `Нужен квадрат от ${min}×${min} до ${w}×${h} пикселей.` : `Изображение должно быть не больше ${w}×${h} пикселей.`,
      image: 'Выберите изображение из списка.',
    },
  },
  en: {
    title: 'Card design',
    saved: 'Saved. Cards on phones update within minutes.',
    uploaded: 'Image uploaded. Cards on phones update within minutes.',
    colours: 'Colours and texts',
    background: 'Background colour',
    foreground: 'Value colour',
    label: 'Label colour',
    colourHint: 'As #rrggbb, e.g. #1f2a44.',
    pick: (what) => `${what}: pick from the palette`,
    logoText: (l) => `Text next to the logo (${l})`,
    description: (l) => `Card description for VoiceOver (${l})`,
    showPlasticNumber: 'Show the plastic card number on the cards (imported cards)',
    showPlasticNumberHint: 'Holders and tills see the number they know; the card barcode encodes it too.',
    ru: 'Russian',
    en: 'English',
    save: 'Save',
    preview: 'Preview',
    previewHint: 'How the card looks in the wallet apps. The preview follows the fields as you type.',
    apple: 'Apple Wallet',
    google: 'Google Wallet',
    tier: 'Tier',
    points: 'Points',
    holder: 'Member',
    number: 'Card number',
    sampleName: 'Anna Ivanova',
    images: 'Images (PNG)',
    imagesHint: 'Logo (up to 160×50 points), icon (29×29), strip behind the balance (375×123); @2x and @3x versions are 2 and 3 times larger. google-logo: a square of at least 660×660 for Google. At most 1 MB.',
    image: 'Image',
    file: 'PNG file',
    upload: 'Upload',
    current: 'On the card now',
    lowContrast: 'The value colour is hard to read on this background (contrast below 4.5:1).',
    errors: {
      colour: 'A colour as #rrggbb.',
      bothLanguages: 'Fill in both languages or leave both empty.',
      png: 'Choose a PNG file.',
      tooLarge: 'The file is larger than 1 MB.',
      dimensions: (w: number, h: number, min?: number) => (min ? `A square from ${min}×${min} to ${w}×${h} pixels is needed.` : `The image may be at most ${w}×${h} pixels.`),
      image: 'Choose an image from the list.',
    },
  },
});

const CSS = `
.previews{display:flex;flex-wrap:wrap;gap:1.5rem;align-items:flex-start}
.previews figure{margin:0}
.previews figcaption{font-weight:700;margin:0 0 .5rem}
.wc{width:20rem;max-width:100%;border-radius:14px;overflow:hidden;box-shadow:0 6px 18px rgba(0,0,0,.25);font-family:-apple-system,system-ui,sans-serif}
.wc-apple{background:var(--bg);color:var(--fg)}
.wc-apple .top{display:flex;align-items:center;gap:.5rem;padding:.6rem .75rem;background:none}
.wc-apple .logo{height:1.9rem;max-width:6rem;object-fit:contain}
.wc-apple .logo-text{flex:1;font-size:1rem;font-weight:600;color:var(--fg);overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.wc .lbl{display:block;font-size:.62rem;letter-spacing:.06em;text-transform:uppercase;color:var(--label)}
.wc .val{display:block;font-size:1rem;color:var(--fg)}
.wc-apple .hdr{text-align:right}
.wc-apple .strip{position:relative;height:7.4rem;overflow:hidden}
.wc-apple .strip img{position:absolute;inset:0;width:100%;height:100%;object-fit:cover}
.wc-apple .primary{position:relative;padding:1rem .75rem}
.wc-apple .primary .val{font-size:2.6rem;font-weight:300;line-height:1}
.wc-apple .primary .lbl{color:var(--fg)}
.wc-apple .second{display:flex;justify-content:space-between;padding:.6rem .75rem}
.wc-apple .second div:last-child{text-align:right}
.wc .code{background:#fff;border-radius:8px;margin:.75rem auto 1rem;padding:.6rem;width:8.5rem;text-align:center;color:#000;font-size:.7rem}
.wc .code svg{display:block;width:100%;height:auto}
.wc-google{background:var(--bg);color:var(--auto-fg,#fff);padding:1rem}
.wc-google .ghead{display:flex;align-items:center;gap:.6rem;font-size:.9rem}
.wc-google .ghead img{width:2.2rem;height:2.2rem;border-radius:50%;background:#fff;object-fit:cover}
.wc-google .gtitle{font-size:1.4rem;margin:.9rem 0 1rem}
.wc-google .grow{display:flex;justify-content:space-between}
.wc-google .lbl,.wc-google .val{color:var(--auto-fg,#fff)}
.wc-google .code{margin-bottom:0}
.swatch{display:flex;gap:.5rem;align-items:flex-end}
.swatch .field{flex:1}
.thumbs{display:flex;flex-wrap:wrap;gap:1rem;margin:0;padding:0;list-style:none}
.thumbs li{text-align:center;font-size:.85rem}
.thumbs img{display:block;max-width:8rem;max-height:4rem;background:repeating-conic-gradient(#ddd 0 25%,#fff 0 50%) 50%/12px 12px;border:1px solid #c4c7cf}
`;

// A fixed QR-like pattern for the mocks (decorative; the real barcode encodes the card number).
const QR_MOCK = (() => {
  let rects = '';
  let seed = 7;
  for (let y = 0; y < 21; y++)
    for (let x = 0; x < 21; x++) {
      const finder = (x < 7 && y < 7) || (x > 13 && y < 7) || (x < 7 && y > 13);
      const on = finder ? (x % 6 === 0 || y % 6 === 0 || (x % 6 >= 2 && x % 6 <= 4 && y % 6 >= 2 && y % 6 <= 4) || (x > 13 && (x - 14) % 6 === 0)) : ((seed = (seed * 1103515245 + 12345) % 2147483648) >> 16) % 2 === 0;
      if (on) rects += `<rect x="${x}" y="${y}" width="1" height="1"/>`;
    }
  return `<svg viewBox="0 0 21 21" aria-hidden="true" focusable="false">${rects}</svg>`;
})();

const HEX = /^#[0-9a-fA-F]{6}$/;
let defaultImages: Record<string, Buffer> | undefined;

export const designScreen: Screen = {
  nav: { path: '/app/design', label: { ru: 'Дизайн карты', en: 'Card design' }, access: 'owner', group: 'program' },
  routes: async (app, { kit }) => {
    const { ctx } = kit;

    interface State {
      status?: number;
      values?: Record<string, string>;
      errors?: FieldErrors;
      uploadErrors?: FieldErrors;
      info?: string;
    }

    async function render(request: FastifyRequest, reply: FastifyReply, program: ProgramRow, state: State) {
      const session = kit.session(request);
      const l: Lang = kit.lang(request);
      const t = T[l];
      const design = { ...DEFAULT_DESIGN, ...(program.design as Partial<Design>) };
      const v = state.values ?? {
        backgroundColor: design.backgroundColor,
        foregroundColor: design.foregroundColor,
        labelColor: design.labelColor,
        logoText_ru: design.logoText?.ru ?? program.name,
        logoText_en: design.logoText?.en ?? program.name,
        description_ru: design.description?.ru ?? '',
        description_en: design.description?.en ?? '',
        showPlasticNumber: design.showPlasticNumber ? 'on' : '',
      };
      const errors = state.errors ?? {};
      const uploadErrors = state.uploadErrors ?? {};
      const images = await listProgramImages(ctx.db, program.id);
      const version = (name: string) => images.find((i) => i.name === name)?.updated_at.getTime() ?? 0;
      const img = (name: string) => `/app/design/images/${name}?v=${version(name)}`;
      const rules = program.rules as LoyaltyRules;
      const tier = rules.tiers[0].name[l];
      const colour = (name: 'backgroundColor' | 'foregroundColor' | 'labelColor', label: string, cssVar: string) => html`<div class="swatch">
${field({ name, label, value: v[name], hint: t.colourHint, errors, attrs: html` maxlength="7" pattern="#[0-9a-fA-F]{6}" autocomplete="off" spellcheck="false" data-preview-var="${cssVar}" data-twin="pick-${name}"` })}
<div class="field"><label class="visually-hidden" for="pick-${name}">${t.pick(label)}</label><input id="pick-${name}" type="color" value="${HEX.test(v[name] ?? '') ? v[name] : '#000000'}" data-preview-var="${cssVar}" data-twin="f-${name}"></div>
</div>`;
      const lowContrast = HEX.test(v.backgroundColor ?? '') && HEX.test(v.foregroundColor ?? '') && contrastRatio(v.backgroundColor, v.foregroundColor) < 4.5;

      const bg = HEX.test(v.backgroundColor ?? '') ? v.backgroundColor : design.backgroundColor;
      const autoFg = contrastRatio(bg, '#000000') >= contrastRatio(bg, '#ffffff') ? '#000000' : '#ffffff';
      const previewVars = `--auto-fg:${autoFg};--bg:${bg};--fg:${HEX.test(v.foregroundColor ?? '') ? v.foregroundColor : design.foregroundColor};--label:${HEX.test(v.labelColor ?? '') ? v.labelColor : design.labelColor}`;
      const body = html`<h1>${t.title}</h1>
${state.info ? notice(state.info) : ''}
<div class="grid" data-preview-scope>
<section class="panel" aria-labelledby="colours-title">
<h2 id="colours-title">${t.colours}</h2>
${errorSummary(l, errors)}
${lowContrast ? notice(t.lowContrast, 'warn') : ''}
<form method="post" action="/app/design" novalidate>
${csrfInput(session.csrf)}
${colour('backgroundColor', t.background, '--bg')}
${colour('foregroundColor', t.foreground, '--fg')}
${colour('labelColor', t.label, '--label')}
<div class="row">
${field({ name: 'logoText_ru', label: t.logoText(t.ru), value: v.logoText_ru, errors, attrs: html` maxlength="60" lang="ru"${l === 'ru' ? html` data-preview-text="logoText"` : ''}` })}
${field({ name: 'logoText_en', label: t.logoText(t.en), value: v.logoText_en, errors, attrs: html` maxlength="60" lang="en"${l === 'en' ? html` data-preview-text="logoText"` : ''}` })}
</div>
<div class="row">
${field({ name: 'description_ru', label: t.description(t.ru), value: v.description_ru, errors, attrs: html` maxlength="200" lang="ru"` })}
${field({ name: 'description_en', label: t.description(t.en), value: v.description_en, errors, attrs: html` maxlength="200" lang="en"` })}
</div>
<div class="field check"><label><input type="checkbox" name="showPlasticNumber" value="on"${v.showPlasticNumber ? html` checked` : ''}> ${t.showPlasticNumber}</label><p class="hint">${t.showPlasticNumberHint}</p></div>
<div class="actions"><button class="button" type="submit">${t.save}</button></div>
</form>
</section>
<section class="panel" aria-labelledby="preview-title">
<h2 id="preview-title">${t.preview}</h2>
<p class="hint">${t.previewHint}</p>
<div class="previews" data-preview-root style="${previewVars}">
<figure>
<figcaption>${t.apple}</figcaption>
<div class="wc wc-apple" data-preview="apple" role="img" aria-label="${t.apple}: ${t.preview}">
<div class="top"><img class="logo" src="${img('logo.png')}" alt=""><span class="logo-text" data-preview-slot="logoText" data-placeholder="">${l === 'ru' ? v.logoText_ru : v.logoText_en}</span>
<div class="hdr"><span class="lbl">${t.tier}</span><span class="val">${tier}</span></div></div>
<div class="strip"><img src="${img('strip.png')}" alt=""><div class="primary"><span class="val">${formatNumber(l, 1250)}</span><span class="lbl">${t.points}</span></div></div>
<div class="second"><div><span class="lbl">${t.holder}</span><span class="val">${t.sampleName}</span></div><div><span class="lbl">${t.number}</span><span class="val">2024 0000 0012</span></div></div>
<div class="code">${raw(QR_MOCK)}202400000012</div>
</div>
</figure>
<figure>
<figcaption>${t.google}</figcaption>
<div class="wc wc-google" data-preview="google" role="img" aria-label="${t.google}: ${t.preview}">
<div class="ghead"><img src="${img(images.some((i) => i.name === 'google-logo.png') ? 'google-logo.png' : 'logo.png')}" alt=""><span>${program.name}</span></div>
<p class="gtitle" data-preview-slot="logoText" data-placeholder="${program.name}">${(l === 'ru' ? v.logoText_ru : v.logoText_en) || program.name}</p>
<div class="grow"><div><span class="lbl">${t.points}</span><span class="val">${formatNumber(l, 1250)}</span></div><div><span class="lbl">${t.tier}</span><span class="val">${tier}</span></div></div>
<div class="code">${raw(QR_MOCK)}202400000012</div>
</div>
</figure>
</div>
</section>
</div>
<section class="panel" aria-labelledby="images-title">
<h2 id="images-title">${t.images}</h2>
<p class="hint">${t.imagesHint}</p>
${errorSummary(l, uploadErrors)}
<form method="post" action="/app/design/images" enctype="multipart/form-data" novalidate>
<input type="hidden" name="${CSRF_FIELD}" value="${session.csrf}">
<div class="row">
<div class="field"><label for="f-image">${t.image}</label>
${uploadErrors.image ? html`<p class="error" id="f-image-error">${uploadErrors.image}</p>` : ''}
<select id="f-image" name="image">${IMAGE_NAMES.map((name) => html`<option value="${name}">${name}.png</option>`)}</select></div>
<div class="field"><label for="f-file">${t.file}</label>
${uploadErrors.file ? html`<p class="error" id="f-file-error">${uploadErrors.file}</p>` : ''}
<input id="f-file" name="file" type="file" accept="image/png"${uploadErrors.file ? html` aria-invalid="true" aria-describedby="f-file-error"` : ''}></div>
</div>
<div class="actions"><button class="button" type="submit">${t.upload}</button></div>
</form>
<h3>${t.current}</h3>
<ul class="thumbs">${['logo.png', 'icon.png', 'strip.png', ...images.map((i) => i.name).filter((n) => !['logo.png', 'icon.png', 'strip.png'].includes(n))].map(
        (name) => html`<li><img src="${img(name)}" alt="${name}">${name}</li>`,
      )}</ul>
</section>`;
      return kit.page(request, reply, { status: state.status, title: t.title, body, path: '/app/design', css: CSS });
    }

    app.get('/app/design', { config: { access: 'owner' } }, async (request, reply) => {
      const session = kit.session(request);
      const program = await getProgramOr404(ctx.db, session.programId);
      const q = request.query as Record<string, string>;
      const t = T[kit.lang(request)];
      return render(request, reply, program, { info: q.saved ? t.saved : q.uploaded ? t.uploaded : undefined });
    });

    app.post('/app/design', { config: { access: 'owner' } }, async (request, reply) => {
      const session = kit.session(request);
      const t = T[kit.lang(request)];
      const body = formBody(request);
      const names = ['backgroundColor', 'foregroundColor', 'labelColor', 'logoText_ru', 'logoText_en', 'description_ru', 'description_en', 'showPlasticNumber'];
      const values = Object.fromEntries(names.map((n) => [n, formText(body, n, 200)]));
      const errors: FieldErrors = {};
      for (const n of ['backgroundColor', 'foregroundColor', 'labelColor']) if (!HEX.test(values[n])) errors[n] = t.errors.colour;
      if (Boolean(values.description_ru) !== Boolean(values.description_en)) errors[values.description_ru ? 'description_en' : 'description_ru'] = t.errors.bothLanguages;
      const program = await getProgramOr404(ctx.db, session.programId);
      if (Object.keys(errors).length > 0) return render(request, reply, program, { status: 422, values, errors });
      const design: Design = {
        backgroundColor: values.backgroundColor.toLowerCase(),
        foregroundColor: values.foregroundColor.toLowerCase(),
        labelColor: values.labelColor.toLowerCase(),
        logoText: { ru: values.logoText_ru, en: values.logoText_en },
        ...(values.description_ru ? { description: { ru: values.description_ru, en: values.description_en } } : {}),
        ...(values.showPlasticNumber === 'on' ? { showPlasticNumber: true } : {}),
      };
      if (!Value.Check(DesignSchema, design)) throw new AppError(400, 'validation_failed', 'Invalid design');
      await updateProgram(ctx.db, ctx.cardChanges, session.programId, { design });
      return kit.redirect(reply, '/app/design?saved=1');
    });

    app.post('/app/design/images', { config: { access: 'owner' }, bodyLimit: MAX_IMAGE_BYTES + 64 * 1024 }, async (request, reply) => {
      const session = kit.session(request);
      const t = T[kit.lang(request)];
      const body = formBody(request);
      const name = typeof body.image === 'string' ? body.image : '';
      const file = body.file;
      const uploadErrors: FieldErrors = {};
      if (!IMAGE_NAMES.includes(name)) uploadErrors.image = t.errors.image;
      if (!isUploadedFile(file) || !isPng(file.data)) uploadErrors.file = t.errors.png;
      else if (file.data.length > MAX_IMAGE_BYTES) uploadErrors.file = t.errors.tooLarge;
      const program = await getProgramOr404(ctx.db, session.programId);
      if (Object.keys(uploadErrors).length > 0 || !isUploadedFile(file)) return render(request, reply, program, { status: 422, uploadErrors });
      try {
        // Decoded, checked against the image's size limits and re-encoded (programs/images.ts).
        await saveProgramImage(ctx, session.programId, name, file.data);
      } catch (error) {
        if (!(error instanceof AppError) || !['png_required', 'image_dimensions'].includes(error.code)) throw error;
        const limits = imageLimits(name);
        uploadErrors.file = error.code === 'png_required' ? t.errors.png : t.errors.dimensions(limits.maxWidth, limits.maxHeight, limits.square ? limits.minWidth : undefined);
        return render(request, reply, program, { status: 422, uploadErrors });
      }
      return kit.redirect(reply, '/app/design?uploaded=1');
    });

    // Pass images are no secret (every pass carries them); the campaign preview shows the icon to marketers too.
    app.get<{ Params: { name: string } }>('/app/design/images/:name', { config: { access: 'signed-in' } }, async (request, reply) => {
      const session = kit.session(request);
      const name = request.params.name;
      if (!/^[a-z-]+(@[23]x)?\.png$/.test(name)) throw notFoundError();
      const stored = await ctx.db
        .selectFrom('program_image')
        .select('png')
        .where('program_id', '=', session.programId)
        .where('name', '=', name)
        .executeTakeFirst();
      defaultImages ??= loadDefaultImages(DEFAULT_PASS_IMAGES_DIR);
      const png = stored ? Buffer.from(stored.png) : defaultImages[name];
      if (!png) throw notFoundError();
      return reply.type('image/png').header('cache-control', 'private, max-age=300').send(png);
    });
  },
};
