/**
 * GET, POST /b24/frame — the app's main page (PLACEMENT=DEFAULT) and the CRM card tabs
 * (reference §1.3, §7.3). Bitrix24 POSTs the form (AUTH_ID, REFRESH_ID, member_id, PLACEMENT,
 * PLACEMENT_OPTIONS, maybe APPLICATION_TOKEN) with DOMAIN, PROTOCOL, LANG, APP_SID in the query.
 * The request is verified against the stored installation before anything is rendered; failures
 * are an HTML page with the status and no data. The answer must stay frameable: no
 * X-Frame-Options, no CSP frame-ancestors (reference §7.3).
 */
import { Router, type Request, type Response } from 'express';
import { frameFormSchema, parseOrThrow } from '../../src/bitrix/payloads.js';
import { AppError, isAppError } from '../../src/handlers/errors.js';
import type { Deps } from '../../src/handlers/ports.js';
import { verifyFrameRequest } from '../../src/handlers/verify-frame-request.js';
import { httpStatusFor } from '../middleware/error-handler.js';
import { framePage, type Lang } from './frame-page.js';
import { escapeHtml, page, pickLang } from './html.js';

const ERRORS = {
  ru: {
    title: 'Сарафан',
    bad_request: 'Откройте приложение из Битрикс24.',
    not_found: 'Сарафан не установлен на этом портале.',
    unauthorized: 'Не удалось подтвердить, что запрос пришёл с вашего портала.',
  },
  en: {
    title: 'Sarafan',
    bad_request: 'Open the application from Bitrix24.',
    not_found: 'Sarafan is not installed on this portal.',
    unauthorized: 'Could not confirm that the request came from your portal.',
  },
} satisfies Record<Lang, Record<string, string>>;

export function frameRoutes(deps: Deps): Router {
  const router = Router();

  const handle = async (req: Request, res: Response): Promise<void> => {
    const input = { ...(req.query as Record<string, unknown>), ...((req.body ?? {}) as Record<string, unknown>) };
    const lang = pickLang(input.LANG);
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
      res.type('html').send(framePage(deps.appBaseUrl, lang));
    } catch (e) {
      if (!isAppError(e)) throw e;
      const t = ERRORS[lang];
      const message = e.code === 'not_found' || e.code === 'unauthorized' || e.code === 'bad_request' ? t[e.code] : e.message;
      res.status(httpStatusFor(e.code)).type('html').send(page(t.title, `<p class="error">${escapeHtml(message)}</p>`, { lang }));
    }
  };

  router.get('/b24/frame', handle);
  router.post('/b24/frame', handle);
  return router;
}
