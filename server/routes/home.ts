import { Router } from 'express';
import { escapeHtml, page } from './html.js';

/**
 * `GET /`: what someone who opens Sarafan's own address sees. Sarafan lives inside Bitrix24 (its
 * pages are the portal's frames), so this page says so and points at where to go instead: in
 * sandbox mode the sandbox portal, otherwise the operators' probes.
 */
export interface HomeDeps {
  /** Sandbox mode: the sandbox portal's page, where Sarafan is installed. */
  portalUrl?: string;
}

export function homeRoutes(deps: HomeDeps): Router {
  const router = Router();
  const body = `<p>Sarafan («сарафанное радио», word of mouth) runs referral and loyalty programs inside Bitrix24 CRM:
when a referred client's deal is won, the referrer is credited — once, from an append-only ledger — and the
balance shows on the client's card.</p>
${
  deps.portalUrl
    ? `<p>This instance runs in <b>sandbox mode</b>: open the <a href="${escapeHtml(deps.portalUrl)}" data-testid="portal-link">sandbox portal</a>
(a local Bitrix24 with Sarafan installed and a demo shop) and work there.</p>`
    : `<p>Sarafan's pages open inside Bitrix24: install the application on your portal and open it there.</p>`
}
<p>Operators: <a href="/healthz">/healthz</a> (liveness), <a href="/readyz">/readyz</a> (readiness).</p>`;
  const html = page('Sarafan', body, { lang: 'en' });

  router.get('/', (_req, res) => {
    res.set('Cache-Control', 'no-store').type('html').send(html);
  });
  return router;
}
