/**
 * CRM lists and cards: contacts, leads, deals. Every change goes through the Portal facade with
 * the current user as actor, so events and robots fire as for a person working in Bitrix24.
 */
import express, { type Request, type Response, type Router } from 'express';
import { PortalError } from '../types.js';
import type { EntityKind, Row, SandboxUser, Stage } from '../types.js';
import { FRAME_HOST_TAG, placementTitle, renderFrame, visiblePlacements } from './apps.js';
import {
  actorOf,
  allEntities,
  currentLang,
  currentUser,
  dateTime,
  describeError,
  entityName,
  formText,
  isKind,
  KIND_TEXT,
  notFoundPage,
  send,
  type WebContext,
} from './context.js';
import { fieldDefs, formValue, loadChoices, parseForm, renderFields, ufLabel, type FormError } from './fields.js';
import { html, raw, userName, type Flash, type Html } from './html.js';

export const PAGE_SIZE = 50;

const LIST_SELECT: Record<EntityKind, string[]> = {
  contact: ['*', 'UF_*', 'PHONE', 'EMAIL'],
  lead: ['*', 'UF_*', 'PHONE', 'EMAIL'],
  deal: ['*', 'UF_*'],
};

function cardUrl(kind: EntityKind, id: number | string): string {
  return `/crm/${kind}/details/${id}/`;
}

function firstMulti(value: unknown): string {
  const first = Array.isArray(value) ? value[0] : value;
  if (first && typeof first === 'object') return String((first as Row).VALUE ?? '');
  return first === null || first === undefined ? '' : String(first);
}

function cellText(value: unknown): string {
  if (value === null || value === undefined || value === false) return '';
  if (Array.isArray(value)) return value.map(cellText).join(', ');
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

function money(amount: unknown, currency: unknown): string {
  const n = Number(amount);
  if (amount === null || amount === undefined || amount === '' || Number.isNaN(n)) return '';
  return `${n.toLocaleString('ru-RU', { minimumFractionDigits: 0, maximumFractionDigits: 2 })} ${typeof currency === 'string' && currency ? currency : ''}`.trim();
}

function stageOf(kind: 'deal' | 'lead', row: Row): string {
  return String((kind === 'deal' ? row.STAGE_ID : row.STATUS_ID) ?? '');
}

function categoryOf(row: Row): number {
  const n = Number(row.CATEGORY_ID ?? 0);
  return Number.isFinite(n) ? n : 0;
}

function list(ctx: WebContext, req: Request, res: Response, kind: EntityKind): void {
  const { portal } = ctx;
  const q = typeof req.query.q === 'string' ? req.query.q.trim() : '';
  const pageNo = Math.max(1, Number.parseInt(typeof req.query.page === 'string' ? req.query.page : '1', 10) || 1);
  const ufs = portal.userFields(kind);
  const ufColumns = (ctx.settings.listColumns?.[kind] ?? [])
    .map((name) => ufs.find((u) => u.FIELD_NAME === name))
    .filter((u): u is Row => !!u)
    .map((u) => ({ name: String(u.FIELD_NAME), label: ufLabel(u, 'LIST_COLUMN_LABEL') }));

  let rows: Row[];
  let total: number;
  if (q) {
    const needle = q.toLowerCase();
    const matching = allEntities(portal, kind, LIST_SELECT[kind]).filter((r) =>
      [entityName(kind, r), String(r.ID ?? ''), ...ufColumns.map((c) => cellText(r[c.name]))].some((t) => t.toLowerCase().includes(needle)),
    );
    total = matching.length;
    rows = matching.slice((pageNo - 1) * PAGE_SIZE, pageNo * PAGE_SIZE);
  } else {
    const result = portal.listEntities(kind, { order: { ID: 'DESC' }, select: LIST_SELECT[kind], start: (pageNo - 1) * PAGE_SIZE });
    rows = result.rows.slice(0, PAGE_SIZE);
    total = result.total;
  }

  const stageNames = new Map<string, Stage>();
  if (kind === 'lead') for (const s of portal.stages('lead')) stageNames.set(s.STATUS_ID, s);
  if (kind === 'deal') for (const c of portal.categories()) for (const s of portal.stages('deal', c.id)) stageNames.set(s.STATUS_ID, s);
  const contactNames = new Map<string, string>();
  if (kind === 'deal') {
    for (const r of rows) {
      const id = Number(r.CONTACT_ID ?? 0);
      if (id > 0 && !contactNames.has(String(id))) contactNames.set(String(id), entityName('contact', portal.getEntity('contact', id)) || `#${id}`);
    }
  }

  const head: string[] = ['ID', kind === 'contact' ? 'Имя' : 'Название'];
  if (kind === 'contact') head.push('Телефон', 'E-mail');
  if (kind === 'lead') head.push('Статус', 'Сумма', 'Телефон');
  if (kind === 'deal') head.push('Стадия', 'Сумма', 'Контакт');

  const body = rows.map((r) => {
    const id = String(r.ID ?? '');
    const cells: Html[] = [html`<td>${id}</td>`, html`<td><a href="${cardUrl(kind, id)}" data-testid="row-link">${entityName(kind, r)}</a></td>`];
    if (kind === 'contact') cells.push(html`<td>${firstMulti(r.PHONE)}</td>`, html`<td>${firstMulti(r.EMAIL)}</td>`);
    if (kind === 'lead') {
      const st = stageNames.get(stageOf('lead', r));
      cells.push(html`<td>${st?.NAME ?? stageOf('lead', r)}</td>`, html`<td>${money(r.OPPORTUNITY, r.CURRENCY_ID)}</td>`, html`<td>${firstMulti(r.PHONE)}</td>`);
    }
    if (kind === 'deal') {
      const st = stageNames.get(stageOf('deal', r));
      const contactId = String(r.CONTACT_ID ?? '');
      cells.push(
        html`<td><span class="status ${st?.SEMANTICS === 'S' ? 'status-done' : st?.SEMANTICS === 'F' ? 'status-failed' : ''}">${st?.NAME ?? stageOf('deal', r)}</span></td>`,
        html`<td>${money(r.OPPORTUNITY, r.CURRENCY_ID)}</td>`,
        html`<td>${contactNames.has(contactId) ? html`<a href="${cardUrl('contact', contactId)}">${contactNames.get(contactId)}</a>` : ''}</td>`,
      );
    }
    for (const c of ufColumns) cells.push(html`<td>${cellText(r[c.name])}</td>`);
    return html`<tr data-testid="row-${id}">${cells}</tr>`;
  });

  const pages = Math.max(1, Math.ceil(total / PAGE_SIZE));
  const link = (p: number): string => `/crm/${kind}/?${new URLSearchParams({ ...(q ? { q } : {}), page: String(p) }).toString()}`;
  send(ctx, req, res, {
    title: KIND_TEXT[kind].many,
    section: kind,
    body: html`<div class="card">
  <div class="toolbar">
    <a class="btn btn-success" href="${cardUrl(kind, 0)}" data-testid="create">Создать</a>
    <form method="get" action="/crm/${kind}/" class="toolbar grow" style="margin:0">
      <input type="search" name="q" value="${q}" placeholder="Поиск по названию или имени" data-testid="search" style="min-width:280px">
      <button class="btn btn-light" type="submit">Найти</button>
      ${q ? html`<a href="/crm/${kind}/">Сбросить</a>` : ''}
    </form>
    <span class="muted">Всего: ${total}</span>
  </div>
  <table class="grid" data-testid="list">
    <thead><tr>${head.map((h) => html`<th>${h}</th>`)}${ufColumns.map((c) => html`<th>${c.label}</th>`)}</tr></thead>
    <tbody>${body.length ? body : html`<tr><td colspan="${head.length + ufColumns.length}" class="muted">Записей нет</td></tr>`}</tbody>
  </table>
  <div class="pager">
    ${pageNo > 1 ? html`<a href="${link(pageNo - 1)}" data-testid="prev">← Назад</a>` : ''}
    <span class="muted">Страница ${pageNo} из ${pages}</span>
    ${pageNo < pages ? html`<a href="${link(pageNo + 1)}" data-testid="next">Вперёд →</a>` : ''}
  </div>
</div>`,
  });
}

/** The id of a card URL: a positive id, or 0 for a new one ("0" or "new"). */
function cardId(raw: unknown): number | null {
  const text = String(raw ?? '');
  if (text === 'new' || text === '0') return 0;
  return /^\d+$/.test(text) && Number(text) > 0 ? Number(text) : null;
}

function stageBar(ctx: WebContext, kind: 'deal' | 'lead', row: Row): Html {
  const stages = (kind === 'deal' ? ctx.portal.stages('deal', categoryOf(row)) : ctx.portal.stages('lead')).slice().sort((a, b) => a.SORT - b.SORT);
  const current = stageOf(kind, row);
  const currentStage = stages.find((s) => s.STATUS_ID === current);
  const currentIndex = stages.findIndex((s) => s.STATUS_ID === current);
  const id = String(row.ID ?? '');
  return html`<div class="stages" data-testid="stage-bar">${stages.map((s, i) => {
    const classes = ['stage'];
    if (s.SEMANTICS === 'S') classes.push('success');
    if (s.SEMANTICS === 'F') classes.push('failure');
    if (s.STATUS_ID === current) classes.push('current');
    else if (s.SEMANTICS === null && currentStage?.SEMANTICS !== 'F' && i < currentIndex) classes.push('passed');
    const style = s.STATUS_ID === current && s.SEMANTICS === null && s.COLOR ? raw(` style="background:${cssColor(s.COLOR)}"`) : '';
    return html`<form method="post" action="${cardUrl(kind, id)}stage"><input type="hidden" name="stage" value="${s.STATUS_ID}"><button type="submit" class="${classes.join(' ')}"${style} data-testid="stage-${s.STATUS_ID}" title="${s.NAME}"${raw(s.STATUS_ID === current ? ' aria-current="step"' : '')}>${s.NAME}</button></form>`;
  })}</div>`;
}

function cssColor(color: string): string {
  return /^#[0-9a-fA-F]{3,8}$/.test(color) ? color : '#2fc6f6';
}

function timeline(ctx: WebContext, kind: EntityKind, id: number): Html {
  const items = ctx.portal
    .timeline(kind, id)
    .slice()
    .sort((a, b) => b.ID - a.ID);
  return html`<div class="card" data-testid="timeline"><h2>История</h2>${items.length
    ? items.map(
        (t) => html`<div class="timeline-item" data-testid="timeline-item"><div class="meta">${dateTime(t.CREATED)} · ${userName(ctx.portal.user(t.AUTHOR_ID)) || `#${t.AUTHOR_ID}`}</div>${t.COMMENT}</div>`,
      )
    : html`<div class="muted">Пока пусто</div>`}</div>`;
}

interface CardState {
  values?: Record<string, string>;
  error?: FormError | null;
  flash?: Flash | null;
  status?: number;
}

function card(ctx: WebContext, req: Request, res: Response, kind: EntityKind, id: number, state: CardState = {}): void {
  const { portal } = ctx;
  const user = currentUser(req, portal);
  const row = id > 0 ? portal.getEntity(kind, id) : null;
  if (id > 0 && !row) return notFoundPage(ctx, req, res, `${KIND_TEXT[kind].one} #${id} не найден(а)`);
  const creating = id === 0;
  const defs = fieldDefs(portal, kind, creating);
  const choices = loadChoices(portal, defs);
  const values: Record<string, string> = {};
  for (const def of defs) values[def.name] = formValue(def, row);
  if (creating) {
    values.CURRENCY_ID ||= 'RUB';
    const defaultCategory = portal.categories().find((c) => c.isDefault) ?? portal.categories()[0];
    if (kind === 'deal' && !values.CATEGORY_ID && defaultCategory) values.CATEGORY_ID = String(defaultCategory.id);
    const contact = typeof req.query.contact === 'string' ? req.query.contact : '';
    if (kind === 'deal' && /^\d+$/.test(contact)) values.CONTACT_ID = contact;
  }
  Object.assign(values, state.values ?? {});
  const title = creating ? KIND_TEXT[kind].newOne : `${KIND_TEXT[kind].one}: ${entityName(kind, row)}`;
  const flash = state.error ? { kind: 'error' as const, text: state.error.message } : state.flash;

  const tabs = creating ? [] : visiblePlacements(ctx, KIND_TEXT[kind].placement, user);
  const tabParam = typeof req.query.tab === 'string' ? req.query.tab : 'main';
  const tabIndex = /^app\d+$/.test(tabParam) ? Number(tabParam.slice(3)) : -1;
  const activeTab = tabIndex >= 0 ? tabs[tabIndex] : undefined;
  const base = cardUrl(kind, id);
  const tabBar = creating
    ? ''
    : html`<nav class="tabs">
  <a class="tab${activeTab ? '' : ' active'}" href="${base}" data-testid="tab-main">Общие</a>
  ${tabs.map((p, i) => html`<a class="tab${activeTab === p ? ' active' : ''}" href="${base}?tab=app${i}" data-testid="tab-${p.placement}" data-client-id="${p.clientId}">${placementTitle(ctx, p)}</a>`)}
</nav>`;

  let content: Html;
  let tail: Html | undefined;
  if (activeTab && row) {
    const app = portal.app(activeTab.clientId);
    content = app
      ? renderFrame(ctx, {
          app,
          user,
          lang: currentLang(req),
          url: activeTab.handler,
          placement: activeTab.placement,
          placementOptions: { ID: String(id) },
          install: !app.installed,
          context: 'tab',
          title: placementTitle(ctx, activeTab),
          closeUrl: base,
        })
      : html`<div class="card muted">Приложение недоступно</div>`;
    content = html`<div class="tab-area" data-testid="tab-area">${content}</div>`;
    tail = FRAME_HOST_TAG;
  } else {
    const extra: Html[] = [];
    if (!creating && kind === 'lead') {
      extra.push(
        html`<form method="post" action="${base}convert" data-confirm="Создать из лида контакт и сделку?"><button type="submit" class="btn btn-light" data-testid="convert">Конвертировать</button></form>`,
      );
    }
    if (!creating && kind === 'contact') extra.push(html`<a class="btn btn-light" href="${cardUrl('deal', 0)}?contact=${id}" data-testid="create-deal">Создать сделку</a>`);
    if (!creating) {
      extra.push(
        html`<form method="post" action="${base}delete" data-confirm="Удалить безвозвратно?"><button type="submit" class="btn btn-danger" data-testid="delete">Удалить</button></form>`,
      );
    }
    const form = html`<div class="card">
  <h2>${creating ? 'Новая запись' : 'О записи'}</h2>
  <form method="post" action="${base}" id="card-form" data-testid="card-form">
    ${renderFields(defs, values, choices, state.error?.field ?? null)}
    <div class="toolbar" style="margin-top:16px"><button type="submit" class="btn btn-success" data-testid="save">${creating ? 'Создать' : 'Сохранить'}</button><a href="/crm/${kind}/" class="btn btn-light">Отмена</a></div>
  </form>
  ${extra.length ? html`<div class="toolbar" style="margin-top:8px">${extra}</div>` : ''}
</div>`;
    const related = !creating && row ? relatedBlock(ctx, kind, row) : '';
    content = creating ? form : html`<div class="two-col"><div>${form}</div><div>${related}${timeline(ctx, kind, id)}</div></div>`;
  }
  const bar = row && (kind === 'deal' || kind === 'lead') ? stageBar(ctx, kind, row) : '';
  send(ctx, req, res, {
    status: state.status ?? 200,
    title,
    section: kind,
    flash,
    body: html`<p><a href="/crm/${kind}/">← ${KIND_TEXT[kind].many}</a></p>${bar}${tabBar}${content}`,
    ...(tail ? { tail } : {}),
  });
}

/** Links between records: a deal's contact, a contact's deals. */
function relatedBlock(ctx: WebContext, kind: EntityKind, row: Row): Html | '' {
  if (kind === 'deal') {
    const contactId = Number(row.CONTACT_ID ?? 0);
    const contact = contactId > 0 ? ctx.portal.getEntity('contact', contactId) : null;
    return contact ? html`<div class="card"><h2>Клиент</h2><a href="${cardUrl('contact', contactId)}" data-testid="deal-contact">${entityName('contact', contact)}</a></div>` : '';
  }
  if (kind === 'contact') {
    const deals = ctx.portal.listEntities('deal', { filter: { CONTACT_ID: row.ID }, order: { ID: 'DESC' }, select: ['ID', 'TITLE', 'STAGE_ID', 'OPPORTUNITY', 'CURRENCY_ID', 'CATEGORY_ID'], start: 0 }).rows;
    if (!deals.length) return '';
    return html`<div class="card"><h2>Сделки</h2>${deals.map(
      (d) => html`<div><a href="${cardUrl('deal', String(d.ID))}">${entityName('deal', d)}</a> <span class="muted">${money(d.OPPORTUNITY, d.CURRENCY_ID)}</span></div>`,
    )}</div>`;
  }
  return '';
}

function entityParams(ctx: WebContext, req: Request, res: Response): { kind: EntityKind; id: number } | null {
  const kind = req.params.entity;
  const id = cardId(req.params.id);
  if (!isKind(kind) || id === null) {
    notFoundPage(ctx, req, res, 'Такой страницы нет');
    return null;
  }
  return { kind, id };
}

function save(ctx: WebContext, req: Request, res: Response): void {
  const target = entityParams(ctx, req, res);
  if (!target) return;
  const { kind, id } = target;
  const { portal } = ctx;
  const user: SandboxUser = currentUser(req, portal);
  const current = id > 0 ? portal.getEntity(kind, id) : null;
  if (id > 0 && !current) return notFoundPage(ctx, req, res, `${KIND_TEXT[kind].one} #${id} не найден(а)`);
  const defs = fieldDefs(portal, kind, id === 0);
  const parsed = parseForm(defs, req.body, current, loadChoices(portal, defs));
  if (!parsed.error && kind === 'contact' && id === 0 && !parsed.fields.NAME && !parsed.fields.LAST_NAME) {
    parsed.error = { field: 'NAME', message: 'Поле «Имя» (NAME): укажите имя или фамилию' };
  }
  if (parsed.error) return card(ctx, req, res, kind, id, { values: parsed.values, error: parsed.error, status: 400 });
  try {
    if (id === 0) {
      const newId = portal.addEntity(kind, parsed.fields, actorOf(user));
      res.redirect(303, `${cardUrl(kind, newId)}?done=created`);
      return;
    }
    if (Object.keys(parsed.fields).length === 0) {
      res.redirect(303, `${cardUrl(kind, id)}?done=unchanged`);
      return;
    }
    portal.updateEntity(kind, id, parsed.fields, actorOf(user));
    res.redirect(303, `${cardUrl(kind, id)}?done=saved`);
  } catch (err) {
    if (!(err instanceof PortalError)) throw err;
    const field = err.argument && defs.some((d) => d.name === err.argument) ? err.argument : '';
    card(ctx, req, res, kind, id, { values: parsed.values, error: { field, message: `Не сохранено: ${describeError(err)}` }, status: 400 });
  }
}

export function crmRoutes(ctx: WebContext): Router {
  const router = express.Router();

  router.get('/crm', (_req, res) => res.redirect(302, '/crm/deal/'));
  router.get('/crm/:entity', (req, res, next) => {
    const kind = req.params.entity;
    if (!isKind(kind)) return next();
    list(ctx, req, res, kind);
  });
  router.get('/crm/:entity/details/:id', (req, res) => {
    const target = entityParams(ctx, req, res);
    if (target) card(ctx, req, res, target.kind, target.id);
  });
  router.post('/crm/:entity/details/:id', (req, res) => save(ctx, req, res));
  // The card URL form older Bitrix24 pages (and the selectCRM docs) use.
  router.get('/crm/:entity/show/:id', (req, res, next) => {
    const { entity, id } = req.params;
    if (!isKind(entity) || !/^\d+$/.test(id)) return next();
    const q = req.originalUrl.indexOf('?');
    res.redirect(301, `${cardUrl(entity, id)}${q >= 0 ? req.originalUrl.slice(q) : ''}`);
  });

  router.post('/crm/:entity/details/:id/stage', (req, res) => {
    const target = entityParams(ctx, req, res);
    if (!target) return;
    const { kind, id } = target;
    if (kind === 'contact' || id === 0) return notFoundPage(ctx, req, res, 'У контактов нет стадий');
    const row = ctx.portal.getEntity(kind, id);
    if (!row) return notFoundPage(ctx, req, res, `${KIND_TEXT[kind].one} #${id} не найден(а)`);
    const stage = formText(req.body, 'stage');
    const stages = kind === 'deal' ? ctx.portal.stages('deal', categoryOf(row)) : ctx.portal.stages('lead');
    if (!stages.some((s) => s.STATUS_ID === stage)) {
      return card(ctx, req, res, kind, id, { error: { field: '', message: `Стадия «${stage}» не найдена в этой воронке` }, status: 400 });
    }
    if (stage === stageOf(kind, row)) {
      res.redirect(303, `${cardUrl(kind, id)}?done=unchanged`);
      return;
    }
    try {
      ctx.portal.updateEntity(kind, id, { [kind === 'deal' ? 'STAGE_ID' : 'STATUS_ID']: stage }, actorOf(currentUser(req, ctx.portal)));
    } catch (err) {
      if (!(err instanceof PortalError)) throw err;
      return card(ctx, req, res, kind, id, { error: { field: '', message: `Стадия не изменена: ${describeError(err)}` }, status: 400 });
    }
    res.redirect(303, `${cardUrl(kind, id)}?done=moved`);
  });

  router.post('/crm/lead/details/:id/convert', (req, res) => {
    const id = cardId(req.params.id);
    if (!id || !ctx.portal.getEntity('lead', id)) return notFoundPage(ctx, req, res, `Лид #${String(req.params.id)} не найден`);
    try {
      const result = ctx.portal.convertLead(id, actorOf(currentUser(req, ctx.portal)), { withDeal: true });
      res.redirect(303, `${cardUrl('contact', result.contactId)}?done=converted`);
    } catch (err) {
      if (!(err instanceof PortalError)) throw err;
      card(ctx, req, res, 'lead', id, { error: { field: '', message: `Лид не сконвертирован: ${describeError(err)}` }, status: 400 });
    }
  });

  router.post('/crm/:entity/details/:id/delete', (req, res) => {
    const target = entityParams(ctx, req, res);
    if (!target) return;
    const { kind, id } = target;
    if (id === 0 || !ctx.portal.getEntity(kind, id)) return notFoundPage(ctx, req, res, `${KIND_TEXT[kind].one} #${id} не найден(а)`);
    try {
      ctx.portal.deleteEntity(kind, id, actorOf(currentUser(req, ctx.portal)));
    } catch (err) {
      if (!(err instanceof PortalError)) throw err;
      return card(ctx, req, res, kind, id, { error: { field: '', message: `Не удалено: ${describeError(err)}` }, status: 400 });
    }
    res.redirect(303, `/crm/${kind}/?done=deleted`);
  });

  return router;
}
