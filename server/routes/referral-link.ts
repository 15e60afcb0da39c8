/**
 * `GET /r/:portal/:code` (SPEC 3): the referral link a customer opens. Public (no credentials),
 * so it is rate-limited per client address, refuses malformed parts before any look-up, and
 * redirects only to the program's own landing URL. Every page is escaped, cache-free and not
 * for indexing.
 */
import { Router, type Request, type Response } from 'express';
import { followReferralLink } from '../../src/handlers/follow-referral-link.js';
import type { Deps } from '../../src/handlers/ports.js';
import { rateLimit } from '../middleware/rate-limit.js';
import { escapeHtml, page } from './html.js';

export interface ReferralLinkOptions {
  /** Requests one client address may make at once, and refilled per second. */
  burst?: number;
  perSecond?: number;
}

const TEXT = {
  ru: {
    title: (company: string) => `Приглашение от друга — ${company}`,
    body: (code: string, company: string) =>
      `<p>Вас пригласили в <b>${escapeHtml(company)}</b>. Ваш код друга:</p><p style="font-size:28px;letter-spacing:2px"><code data-testid="code">${escapeHtml(code)}</code></p><p>Назовите его менеджеру или укажите при заказе.</p>`,
    notFound: 'Ссылка не найдена',
    notFoundBody: '<p>Такой реферальной ссылки нет. Проверьте адрес или спросите код у того, кто вас пригласил.</p>',
    limited: 'Слишком много запросов',
    limitedBody: '<p>Попробуйте ещё раз чуть позже.</p>',
  },
  en: {
    title: (company: string) => `An invitation from a friend — ${company}`,
    body: (code: string, company: string) =>
      `<p>You have been invited to <b>${escapeHtml(company)}</b>. Your friend's code:</p><p style="font-size:28px;letter-spacing:2px"><code data-testid="code">${escapeHtml(code)}</code></p><p>Give it to the manager or enter it with your order.</p>`,
    notFound: 'Link not found',
    notFoundBody: '<p>There is no such referral link. Check the address or ask the person who invited you for their code.</p>',
    limited: 'Too many requests',
    limitedBody: '<p>Please try again a little later.</p>',
  },
} as const;

function send(res: Response, status: number, html: string): void {
  res
    .status(status)
    .set({ 'Cache-Control': 'no-store', 'X-Robots-Tag': 'noindex', 'Referrer-Policy': 'no-referrer', 'Content-Security-Policy': "default-src 'none'; style-src 'unsafe-inline'" })
    .type('html')
    .send(html);
}

export function referralLinkRoutes(deps: Deps, options: ReferralLinkOptions = {}): Router {
  const router = Router();
  const limited = rateLimit({
    burst: options.burst ?? 20,
    perSecond: options.perSecond ?? 0.5,
    clock: deps.clock,
    onLimited: (_req, res) => send(res, 429, page(TEXT.en.limited, TEXT.en.limitedBody, { lang: 'en' })),
  });

  router.get('/r/:portal/:code', limited, async (req: Request<{ portal: string; code: string }>, res) => {
    const answer = await followReferralLink(deps, {
      publicId: req.params.portal,
      code: req.params.code,
      ip: req.ip ?? req.socket.remoteAddress ?? '',
      userAgent: req.get('user-agent'),
      record: req.method === 'GET',
    });
    if (answer.kind === 'redirect') {
      res.status(302).set({ Location: answer.location, 'Cache-Control': 'no-store', 'Referrer-Policy': 'no-referrer' }).end();
      return;
    }
    if (answer.kind === 'not_found') {
      const t = TEXT[answer.lang];
      send(res, 404, page(t.notFound, t.notFoundBody, { lang: answer.lang }));
      return;
    }
    const t = TEXT[answer.lang];
    send(res, 200, page(t.title(answer.company), t.body(answer.code, answer.company), { lang: answer.lang }));
  });
  return router;
}
