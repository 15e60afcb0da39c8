/**
 * GET, POST /b24/frame — the app's main page (PLACEMENT=DEFAULT) and the CRM card tabs
 * (reference §1.3, §7.3). Bitrix24 POSTs the form (AUTH_ID, REFRESH_ID, member_id, PLACEMENT,
 * PLACEMENT_OPTIONS, maybe APPLICATION_TOKEN) with DOMAIN, PROTOCOL, LANG, APP_SID in the query.
 * The request is verified against the stored installation first; then the page of the
 * placement's client entry is served (server/client-assets.ts): the entry script, its preloaded
 * chunks and styles — no token and no portal data (the client gets the user's token from the
 * frame SDK and reads our API with it). Failures are an HTML page with the status and no data.
 * The answer must stay frameable: no X-Frame-Options, no CSP frame-ancestors (reference §7.3).
 */
import { Router, type Request, type Response } from 'express';
import { frameFormSchema, parseOrThrow } from '../../src/bitrix/payloads.js';
import { AppError, isAppError } from '../../src/handlers/errors.js';
import type { Deps } from '../../src/handlers/ports.js';
import { verifyFrameRequest } from '../../src/handlers/verify-frame-request.js';
import { ClientNotBuilt, type ClientAssets, type ClientEntry } from '../client-assets.js';
import { httpStatusFor } from '../middleware/error-handler.js';
import { escapeHtml, page, pickLang, type Lang } from './html.js';

const TEXT = {
  ru: {
    title: 'Сарафан',
    loading: 'Загружаем Сарафан…',
    noscript: 'Для работы Сарафана нужен JavaScript.',
    bad_request: 'Откройте приложение из Битрикс24.',
    not_found: 'Сарафан не установлен на этом портале.',
    unauthorized: 'Не удалось подтвердить, что запрос пришёл с вашего портала.',
    unsupported: 'Это место встройки Сарафан не поддерживает.',
    not_built: 'Интерфейс Сарафана ещё не собран. Администратору сервера: выполните npm run build.',
  },
  en: {
    title: 'Sarafan',
    loading: 'Loading Sarafan…',
    noscript: 'Sarafan needs JavaScript.',
    bad_request: 'Open the application from Bitrix24.',
    not_found: 'Sarafan is not installed on this portal.',
    unauthorized: 'Could not confirm that the request came from your portal.',
    unsupported: 'Sarafan does not support this placement.',
    not_built: 'The Sarafan interface is not built yet. Server administrator: run npm run build.',
  },
} satisfies Record<Lang, Record<string, string>>;

/** Which client entry shows a placement (SPEC 4.3, 7). */
export function entryFor(placement: string | undefined): ClientEntry | null {
  switch (placement ?? 'DEFAULT') {
    case 'DEFAULT':
      return 'main';
    case 'CRM_DEAL_DETAIL_TAB':
      return 'deal';
    case 'CRM_CONTACT_DETAIL_TAB':
    case 'CRM_LEAD_DETAIL_TAB':
      return 'person';
    default:
      return null;
  }
}

function clientPage(base: string, assets: ClientAssets, entry: ClientEntry, lang: Lang): string {
  const t = TEXT[lang];
  const files = assets.entry(entry);
  const url = (f: string): string => escapeHtml(`${base}/client/${f}`);
  const head = [
    ...files.styles.map((f) => `<link rel="stylesheet" href="${url(f)}">`),
    ...files.preload.map((f) => `<link rel="modulepreload" href="${url(f)}">`),
    `<script type="module" src="${url(files.script)}"></script>`,
  ].join('\n');
  return `<!doctype html>
<html lang="${lang}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(t.title)}</title>
${head}
</head>
<body>
<div id="app" data-state="loading" data-entry="${entry}"><p style="margin:16px;font:14px sans-serif;color:#828b95">${escapeHtml(t.loading)}</p></div>
<noscript>${escapeHtml(t.noscript)}</noscript>
</body>
</html>`;
}

export function frameRoutes(deps: Deps, client: () => ClientAssets): Router {
  const router = Router();

  const handle = async (req: Request, res: Response): Promise<void> => {
    const input = { ...(req.query as Record<string, unknown>), ...((req.body ?? {}) as Record<string, unknown>) };
    const lang = pickLang(input.LANG);
    const t = TEXT[lang];
    res.set('Cache-Control', 'no-store');
    try {
      const form = parseOrThrow(frameFormSchema, input, 'frame request');
      const verdict = await verifyFrameRequest(deps.store.installations, {
        memberId: form.member_id,
        domain: form.DOMAIN,
        applicationToken: form.APPLICATION_TOKEN,
      });
      if (!verdict.ok) {
        deps.log.warn({ memberId: form.member_id, reason: verdict.reason, placement: form.PLACEMENT }, 'frame.rejected');
        const missing = verdict.reason === 'unknown_member' || verdict.reason === 'not_installed';
        throw new AppError(missing ? 'not_found' : 'unauthorized', missing ? 'Not installed' : 'Frame request not verified');
      }
      const entry = entryFor(form.PLACEMENT ?? undefined);
      if (!entry) {
        res.status(404).type('html').send(page(t.title, `<p class="error">${escapeHtml(t.unsupported)}</p>`, { lang }));
        return;
      }
      res.type('html').send(clientPage(deps.appBaseUrl, client(), entry, lang));
    } catch (e) {
      if (e instanceof ClientNotBuilt) {
        deps.log.error({ err: e.message }, 'frame.client_not_built');
        res.status(503).type('html').send(page(t.title, `<p class="error">${escapeHtml(t.not_built)}</p>`, { lang }));
        return;
      }
      if (!isAppError(e)) throw e;
      const message = e.code === 'not_found' || e.code === 'unauthorized' || e.code === 'bad_request' ? t[e.code] : e.message;
      res.status(httpStatusFor(e.code)).type('html').send(page(t.title, `<p class="error">${escapeHtml(message)}</p>`, { lang }));
    }
  };

  router.get('/b24/frame', handle);
  router.post('/b24/frame', handle);
  return router;
}
