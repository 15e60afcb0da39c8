/**
 * The sandbox portal's web CRM: server-rendered pages looking enough like a Bitrix24 cloud portal
 * to demo an app and to drive it from browser tests. Mount with `app.use(webRoutes(portal, hooks, settings))`.
 *
 * Routes
 *   GET  /                                    portal home
 *   GET  /crm/{contact|lead|deal}/            lists (?page=, ?q=)
 *   GET  /crm/<entity>/details/<id|0|new>/    card (?tab=main|app<N>); POST saves, …/stage, …/delete, lead …/convert
 *   GET  /marketplace/                        applications; /marketplace/app/<clientId>/ (main page), …/install/ (wizard)
 *   POST /marketplace/app/<clientId>/uninstall
 *   GET  /automation/{deal|lead}/             robots per stage (?category=); POST …/robots, …/robots/<id>/delete
 *   POST /_sandbox/user                       switch the current user (cookie sandbox_user)
 *   GET  /crm/<entity>/show/<id>/             → the card (the URL form of older pages and the selectCRM docs)
 *   POST /_sandbox/frame/{auth,install-finish,option,crm-entities}   the frame host's calls (JSON)
 *   Any page with ?IFRAME=Y renders without the portal's chrome (what a slider shows).
 *   GET  /_sandbox/static/{frame-host.js,ui.js,sandbox.css}
 */
import { readFileSync } from 'node:fs';
import express, { type Router } from 'express';
import type { Portal } from '../types.js';
import { appRoutes } from './apps.js';
import { automationRoutes } from './automation.js';
import { currentUser, dateTime, FrameOptions, formText, LANG_COOKIE, send, UI_LANGS, USER_COOKIE, type WebContext, type WebHooks, type WebSettings } from './context.js';
import { crmRoutes } from './crm.js';
import { CSS, html, userName, type Html } from './html.js';

export type { GuidePart, WebHooks, WebSettings } from './context.js';

function staticFile(name: string): string {
  return readFileSync(new URL(`./static/${name}`, import.meta.url), 'utf8');
}

function home(ctx: WebContext): express.RequestHandler {
  return (req, res) => {
    const { portal } = ctx;
    const user = currentUser(req, portal);
    const apps = portal.apps();
    const notes = portal
      .notifications(user.ID)
      .slice()
      .sort((a, b) => b.ID - a.ID)
      .slice(0, 20);
    const appRows = apps.map(
      (a) => html`<tr data-testid="home-app-${a.clientId}"><td><b>${a.title}</b><div class="muted">${a.code} ${a.version}</div></td>
<td>${a.installed ? html`<span class="status status-installed">Установлено</span>` : a.applicationToken ? html`<span class="status status-pending">Установка не завершена</span>` : html`<span class="status status-absent">Не установлено</span>`}</td>
<td>${a.installed ? html`<a href="/marketplace/app/${encodeURIComponent(a.clientId)}/">Открыть</a>` : html`<a href="/marketplace/app/${encodeURIComponent(a.clientId)}/install/">Установить</a>`}</td></tr>`,
    );
    send(ctx, req, res, {
      title: 'Главная',
      section: 'home',
      body: html`<div class="two-col"><div>
<div class="card"><h2>Что это</h2>
<p>Локальная имитация облачного портала Битрикс24 <b>${portal.domain}</b> (member_id <code>${portal.memberId}</code>): CRM (контакты, лиды, сделки),
приложения с вкладками в карточках, роботы на стадиях и REST API по адресу <code>${portal.origin}/rest/</code>. Всё хранится локально; письма и платежи не уходят наружу.</p>
<p>Вы вошли как <b>${userName(user)}</b>${user.ADMIN ? ' (администратор)' : ''}. Переключить пользователя можно в шапке.</p>
<div class="toolbar"><a class="btn" href="/crm/contact/">Контакты</a><a class="btn" href="/crm/lead/">Лиды</a><a class="btn" href="/crm/deal/">Сделки</a><a class="btn btn-light" href="/automation/deal/">Роботы</a><a class="btn btn-light" href="/marketplace/">Приложения</a></div>
</div>
${guide(ctx)}
</div><div>
<div class="card"><h2>Приложения</h2><table class="grid"><tbody>${appRows.length ? appRows : html`<tr><td class="muted">Нет приложений</td></tr>`}</tbody></table></div>
<div class="card" id="notifications"><h2>Уведомления</h2>${notes.length
        ? notes.map((n) => html`<div class="timeline-item" data-testid="notification"><div class="meta">${dateTime(n.CREATED)}</div>${n.MESSAGE}</div>`)
        : html`<div class="muted">Уведомлений нет</div>`}</div>
</div></div>`,
    });
  };
}

function guide(ctx: WebContext): Html | string {
  const g = ctx.settings.guide;
  if (!g) return '';
  return html`<div class="card"><h2>${g.title}</h2><ol class="checklist" data-testid="guide">${g.steps.map(
    (step) => html`<li>${step.map((part) => (typeof part === 'string' ? part : html`<a href="${part.href}">${part.text}</a>`))}</li>`,
  )}</ol></div>`;
}

export function webRoutes(portal: Portal, hooks: WebHooks, settings: WebSettings = {}): Router {
  const ctx: WebContext = { portal, hooks, settings, options: new FrameOptions(portal) };
  const router = express.Router();
  const assets: Record<string, { type: string; body: string }> = {
    'frame-host.js': { type: 'text/javascript; charset=utf-8', body: staticFile('frame-host.js') },
    'ui.js': { type: 'text/javascript; charset=utf-8', body: staticFile('ui.js') },
    'sandbox.css': { type: 'text/css; charset=utf-8', body: CSS },
  };

  router.get('/_sandbox/static/:name', (req, res, next) => {
    const asset = assets[req.params.name];
    if (!asset) return next();
    res.type(asset.type).set('Cache-Control', 'no-cache').send(asset.body);
  });

  // Only our own pages' forms: the REST routes mounted next to this router parse their own bodies.
  router.use(['/crm', '/marketplace', '/automation', '/_sandbox/user'], express.urlencoded({ extended: false, limit: '1mb' }));

  router.post('/_sandbox/user', (req, res) => {
    const id = Number(formText(req.body, 'userId'));
    const back = formText(req.body, 'back');
    const target = back.startsWith('/') && !back.startsWith('//') ? back : '/';
    if (portal.user(id)) res.cookie(USER_COOKIE, String(id), { path: '/', sameSite: 'lax', httpOnly: true });
    const lang = formText(req.body, 'lang');
    if ((UI_LANGS as readonly string[]).includes(lang)) res.cookie(LANG_COOKIE, lang, { path: '/', sameSite: 'lax', httpOnly: true });
    res.redirect(303, target);
  });

  router.get('/', home(ctx));
  router.use(crmRoutes(ctx));
  router.use(appRoutes(ctx));
  router.use(automationRoutes(ctx));
  return router;
}
