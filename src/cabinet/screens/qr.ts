import { joinQrUrls, joinUrl } from '../../enrollment/links.js';
import { qrSvgInline } from '../../enrollment/qr.js';
import { AppError } from '../../http/errors.js';
import { MATERIAL_FORMATS } from '../../materials/render.js';
import { renderMaterial } from '../../materials/service.js';
import { html, raw } from '../../http/html.js';
import { CABINET_MESSAGES, texts, type Lang } from '../i18n.js';
import type { Screen } from '../kit.js';

/**
 * «QR-коды» (owner, marketer): the program's join QR code and each staff member's personal one
 * (cards enrolled through it count for that person in the leaderboard), ready to print: the page
 * prints as a sheet of cards (the header and buttons are left out), and each code links to its
 * print-size SVG and PNG (`/programs/{slug}/qr.svg|png`).
 */
const T = texts({
  ru: {
    title: 'QR-коды и ссылки',
    lead: 'Распечатайте и разместите у кассы. Карты, выпущенные по личному коду сотрудника, засчитываются ему в рейтинге.',
    program: 'Общий код программы',
    scan: 'Наведите камеру телефона, чтобы получить карту',
    link: 'Ссылка',
    svg: 'SVG для печати',
    png: 'PNG',
    qrOf: (name: string) => `QR-код ссылки на карту: ${name}`,
    none: 'Сотрудников пока нет — добавьте их в разделе «Сотрудники».',
    materials: 'Для печати',
    formats: { 'poster-a4': 'Плакат A4', 'poster-a5': 'Плакат A5', 'table-tent': 'Табличка на стол', stickers: 'Наклейки' },
  },
  en: {
    title: 'QR codes and links',
    lead: "Print them and put them at the till. Cards enrolled through a staff member's personal code count for them in the leaderboard.",
    program: "The programme's code",
    scan: 'Point your phone camera here to get the card',
    link: 'Link',
    svg: 'SVG for print',
    png: 'PNG',
    qrOf: (name) => `QR code of the card link: ${name}`,
    none: 'No staff members yet: add them under “Staff”.',
    materials: 'Print',
    formats: { 'poster-a4': 'A4 poster', 'poster-a5': 'A5 poster', 'table-tent': 'Table tent', stickers: 'Stickers' },
  },
});

const CSS = `
.qr-sheet{display:grid;gap:1rem;margin-top:1rem;grid-template-columns:repeat(auto-fill,minmax(16rem,1fr))}
.qr-card{text-align:center}
.qr-card .qr{margin:.5rem auto}
.qr-card input{text-align:center;font-size:.85rem}
@media print{.qr-sheet{grid-template-columns:repeat(2,1fr)}.qr-card .links,.qr-card label,.qr-card input{display:none}.qr-card .qr{max-width:9cm}h1,.lead{display:none}}
`;

export const qrScreen: Screen = {
  nav: { path: '/app/qr', label: { ru: 'QR-коды', en: 'QR codes' }, access: 'marketing' },
  routes: async (app, { kit }) => {
    const { db } = kit.ctx;
    const publicUrl = kit.ctx.links.publicUrl;
    app.get('/app/qr', { config: { access: 'marketing' } }, async (request, reply) => {
      const session = kit.session(request);
      const l: Lang = kit.lang(request);
      const t = T[l];
      const roles = CABINET_MESSAGES[l].roles;
      const staff = await db
        .selectFrom('staff_member')
        .select(['id', 'name', 'role'])
        .where('program_id', '=', session.programId)
        .where('deleted_at', 'is', null)
        .orderBy('created_at')
        .orderBy('id')
        .execute();
      const entries = [
        { key: 'program', title: t.program, subtitle: session.programName, staff: null as string | null },
        ...staff.map((s) => ({ key: s.id, title: s.name, subtitle: roles[s.role], staff: s.id })),
      ];
      const cards = await Promise.all(
        entries.map(async (e) => {
          const url = joinUrl(publicUrl, session.programSlug, { staff: e.staff });
          const files = joinQrUrls(publicUrl, session.programSlug, { staff: e.staff });
          const svg = await qrSvgInline(url, t.qrOf(e.title));
          const inputId = `link-${e.key}`;
          return html`<section class="panel qr-card" aria-labelledby="qr-${e.key}" data-staff="${e.staff ?? ''}">
<h2 id="qr-${e.key}">${e.title}</h2>
<p class="muted">${e.subtitle}</p>
${raw(svg)}
<p>${t.scan}</p>
<label class="visually-hidden" for="${inputId}">${t.link}: ${e.title}</label>
<input id="${inputId}" type="url" readonly value="${url}" class="mono">
<p class="links"><a href="${files.svg}" download>${t.svg}</a> · <a href="${files.png}" download>${t.png}</a>
<button type="button" class="linkbutton" data-copy="${inputId}" data-copied="${CABINET_MESSAGES[l].copied}" hidden>${CABINET_MESSAGES[l].copy}</button></p>
<p class="links" data-materials>${t.materials}: ${MATERIAL_FORMATS.map(
            (format, i) =>
              html`${i > 0 ? ' · ' : ''}<a href="/app/qr/materials/${format}${e.staff ? html`?staff=${e.staff}` : ''}" download>${t.formats[format]}</a> (<a href="/app/qr/materials/${format}?output=svg${e.staff ? html`&amp;staff=${e.staff}` : ''}" download>SVG</a>)`,
          )}</p>
</section>`;
        }),
      );
      return kit.page(request, reply, {
        title: t.title,
        css: CSS,
        body: html`<h1>${t.title}</h1>
<p class="lead">${t.lead}</p>
<div class="actions no-print"><button type="button" class="button secondary" data-print hidden>${CABINET_MESSAGES[l].print}</button></div>
${staff.length === 0 ? html`<p class="muted">${t.none}</p>` : ''}
<div class="qr-sheet">${cards}</div>`,
      });
    });

    // The print materials of the program (or of one staff member), the API's renderer with the
    // session's program; the cabinet's language unless asked otherwise.
    app.get<{ Params: { format: string }; Querystring: Record<string, string | undefined> }>(
      '/app/qr/materials/:format',
      { config: { access: 'marketing' } },
      async (request, reply) => {
        const session = kit.session(request);
        const format = MATERIAL_FORMATS.find((f) => f === request.params.format);
        if (!format) throw new AppError(404, 'not_found', 'Unknown material');
        const { staff, source, output } = request.query;
        const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
        if ((staff !== undefined && !uuid.test(staff)) || (source !== undefined && !/^[a-z0-9][a-z0-9._-]{0,63}$/.test(source)) || (output !== undefined && output !== 'pdf' && output !== 'svg')) {
          throw new AppError(400, 'invalid_request', 'staff must be a staff id, source a tag, output pdf or svg');
        }
        const material = await renderMaterial(kit.ctx, session.programId, { format, staff, source, output, lang: kit.lang(request) });
        return reply.type(material.type).header('content-disposition', `attachment; filename="${material.fileName}"`).header('cache-control', 'private, no-cache').send(material.body);
      },
    );
  },
};
