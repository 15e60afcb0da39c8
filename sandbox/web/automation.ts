/**
 * Automation rules (reference §8): robots of installed apps put on deal/lead stages, and the log
 * of robot runs. Robots of a stage run in the order they were added; a property or a condition
 * may use what an earlier robot of the same stage returned (`{=A<id>:key}`), and a robot with a
 * condition runs only if it holds when its turn comes (sandbox/robot-expressions.ts).
 */
import express, { type Request, type Response, type Router } from 'express';
import { CONDITION_OPERATORS, PortalError } from '../types.js';
import type { RobotCondition, RobotRegistration, Row, Stage, StageRobot } from '../types.js';
import { activityName, activityReferences, isConditionOperator } from '../robot-expressions.js';
import { dateTime, describeError, formText, langText, send, type WebContext } from './context.js';
import { html, raw } from './html.js';
import { robotFilterOffers } from '../rest/core-methods.js';

type AutoKind = 'deal' | 'lead';
const DOC: Record<AutoKind, 'DEAL' | 'LEAD'> = { deal: 'DEAL', lead: 'LEAD' };

function isAutoKind(v: unknown): v is AutoKind {
  return v === 'deal' || v === 'lead';
}

/** Registered robots of installed apps that apply to deals or leads. */
export function robotsFor(ctx: WebContext, kind: AutoKind): RobotRegistration[] {
  const doc = DOC[kind];
  return ctx.portal
    .robots()
    .filter((r) => ctx.portal.app(r.clientId)?.installed === true)
    .filter((r) => !r.documentType?.length || r.documentType.some((t) => String(t).toUpperCase() === doc || String(t).toUpperCase().endsWith(`DOCUMENT${doc}`)))
    .filter((r) => robotFilterOffers(r.filter, doc));
}

interface PropSpec {
  key: string;
  name: string;
  description: string;
  type: string;
  required: boolean;
  default: string;
  options: { value: string; label: string }[];
}

function propSpecs(r: RobotRegistration): PropSpec[] {
  const props = r.properties && typeof r.properties === 'object' ? r.properties : {};
  return Object.entries(props).map(([key, value]) => {
    const p = value && typeof value === 'object' ? (value as Row) : {};
    const rawOptions = p.Options ?? p.OPTIONS;
    let options: { value: string; label: string }[] = [];
    if (Array.isArray(rawOptions)) options = rawOptions.map((o) => ({ value: String(o), label: String(o) }));
    else if (rawOptions && typeof rawOptions === 'object') options = Object.entries(rawOptions as Row).map(([v, l]) => ({ value: v, label: langText(l) || String(l) }));
    const def = p.Default ?? p.DEFAULT;
    return {
      key,
      name: langText(p.Name ?? p.NAME) || key,
      description: langText(p.Description ?? p.DESCRIPTION),
      type: String(p.Type ?? p.TYPE ?? 'string'),
      required: (p.Required ?? p.REQUIRED) === 'Y',
      default: def === null || def === undefined ? '' : String(def),
      options,
    };
  });
}

/** The return values a robot declares (RETURN_PROPERTIES): what later robots can use. */
function returnSpecs(r: RobotRegistration): { key: string; name: string; type: string }[] {
  const props = r.returnProperties && typeof r.returnProperties === 'object' ? r.returnProperties : {};
  return Object.entries(props).map(([key, value]) => {
    const p = value && typeof value === 'object' ? (value as Row) : {};
    return { key, name: langText(p.Name ?? p.NAME) || key, type: String(p.Type ?? p.TYPE ?? 'string') };
  });
}

function registrationOf(ctx: WebContext, r: Pick<StageRobot, 'clientId' | 'code'>): RobotRegistration | undefined {
  return ctx.portal.robots().find((x) => x.clientId === r.clientId && x.code === r.code);
}

interface ReturnRef {
  expression: string;
  label: string;
}

/** What the robots already on a stage return: a robot added after them can use each of these. */
function stageReturns(ctx: WebContext, onStage: StageRobot[]): ReturnRef[] {
  return onStage.flatMap((r) => {
    const reg = registrationOf(ctx, r);
    if (!reg) return [];
    return returnSpecs(reg).map((v) => ({ expression: `{=${activityName(r.id)}:${v.key}}`, label: `${activityName(r.id)} ${langText(reg.name) || reg.code}: ${v.name}` }));
  });
}

const conditionText = (c: RobotCondition): string => `${c.operand} ${c.operator} ${c.value}`;

const STATUS_TEXT: Record<string, string> = { waiting: 'ждёт ответа', done: 'выполнен', failed: 'ошибка', skipped: 'пропущен' };

function robotName(ctx: WebContext, clientId: string, code: string): string {
  const r = ctx.portal.robots().find((x) => x.clientId === clientId && x.code === code);
  return r ? langText(r.name) || r.code : code;
}

function page(ctx: WebContext, req: Request, res: Response, kind: AutoKind, category: number, error: string | null = null, values: Record<string, string> = {}): void {
  const { portal } = ctx;
  const categories = portal.categories().slice().sort((a, b) => a.sort - b.sort);
  const stages: Stage[] = (kind === 'deal' ? portal.stages('deal', category) : portal.stages('lead')).slice().sort((a, b) => a.SORT - b.SORT);
  const registered = robotsFor(ctx, kind);
  const placed = portal.stageRobots().filter((r) => r.documentType === DOC[kind]);
  const base = `/automation/${kind}/`;

  const columns = stages.map((s) => {
    const here = placed.filter((r) => r.stageId === s.STATUS_ID).sort((a, b) => a.id - b.id);
    const refs = stageReturns(ctx, here);
    const listId = `refs-${s.STATUS_ID}`;
    const color = s.SEMANTICS === 'S' ? '#9dcf00' : s.SEMANTICS === 'F' ? '#ff5752' : /^#[0-9a-fA-F]{3,8}$/.test(s.COLOR) ? s.COLOR : '#2fc6f6';
    return html`<div class="column" data-testid="column-${s.STATUS_ID}">
  <div class="column-head" style="${raw(`background:${color}`)}">${s.NAME}</div>
  ${here.map(
    (r) => html`<div class="robot" data-testid="stage-robot-${r.id}">
    <span class="activity" title="Имя действия: его результаты — {=${activityName(r.id)}:…}">${activityName(r.id)}</span> <b>${robotName(ctx, r.clientId, r.code)}</b> <span class="muted">(${portal.app(r.clientId)?.title ?? r.clientId})</span>
    ${r.condition ? html`<div class="condition" data-testid="stage-robot-condition-${r.id}">Условие: ${conditionText(r.condition)}</div>` : ''}
    <div class="props">${Object.entries(r.properties).map(([k, v]) => html`<div>${k}: ${v}</div>`)}</div>
    <form method="post" action="${base}robots/${r.id}/delete" data-confirm="Убрать робота?"><input type="hidden" name="category" value="${category}"><button type="submit" class="btn btn-light btn-small" data-testid="remove-robot-${r.id}">Убрать</button></form>
  </div>`,
  )}
  ${refs.length ? html`<datalist id="${listId}">${refs.map((ref) => html`<option value="${ref.expression}">${ref.label}</option>`)}</datalist>` : ''}
  ${registered.map((r) => {
    const open = values.stageId === s.STATUS_ID && values.code === r.code && values.clientId === r.clientId;
    const list = refs.length ? raw(` list="${listId}"`) : '';
    const formValue = (name: string, fallback = ''): string => (open && name in values ? (values[name] ?? '') : fallback);
    return html`<details class="add-robot"${raw(open ? ' open' : '')}><summary data-testid="add-robot-${s.STATUS_ID}-${r.code}">+ ${langText(r.name) || r.code}</summary>
    <form method="post" action="${base}robots">
      <input type="hidden" name="clientId" value="${r.clientId}"><input type="hidden" name="code" value="${r.code}">
      <input type="hidden" name="stageId" value="${s.STATUS_ID}"><input type="hidden" name="category" value="${category}">
      ${propSpecs(r).map((p) => {
        const name = `prop_${p.key}`;
        const value = formValue(name, p.default);
        const input =
          p.type === 'select' && p.options.length
            ? html`<select name="${name}">${p.required ? '' : html`<option value="">—</option>`}${p.options.map((o) => html`<option value="${o.value}"${raw(o.value === value ? ' selected' : '')}>${o.label}</option>`)}</select>`
            : html`<input type="text" name="${name}" value="${value}"${list} placeholder="${p.type === 'string' || p.type === 'text' ? '' : p.type}">`;
        return html`<label>${p.name}${p.required ? ' *' : ''}${p.description ? html` <span class="muted">— ${p.description}</span>` : ''}</label>${input}`;
      })}
      <label>Условие <span class="muted">— робот запустится, только если оно выполнено</span></label>
      <div class="condition-row">
        <input type="text" name="cond_operand" value="${formValue('cond_operand')}"${list} placeholder="{=A1:balance}" data-testid="cond-operand">
        <select name="cond_operator" data-testid="cond-operator"><option value="">без условия</option>${CONDITION_OPERATORS.map(
          (op) => html`<option value="${op}"${raw(formValue('cond_operator') === op ? ' selected' : '')}>${op}</option>`,
        )}</select>
        <input type="text" name="cond_value" value="${formValue('cond_value')}" placeholder="1000" data-testid="cond-value">
      </div>
      ${refs.length ? html`<div class="muted" data-testid="refs-${s.STATUS_ID}">Результаты роботов выше: ${refs.map((ref, i) => html`${i ? ', ' : ''}<code>${ref.expression}</code>`)}</div>` : ''}
      <button type="submit" class="btn btn-small" data-testid="add-robot-submit">Добавить</button>
    </form></details>`;
  })}
</div>`;
  });

  const catalogue = registered.map(
    (r) => html`<tr data-testid="robot-${r.code}">
  <td><code>${r.code}</code></td><td>${langText(r.name) || r.code}</td><td>${portal.app(r.clientId)?.title ?? r.clientId}</td>
  <td>${propSpecs(r).map((p) => html`<div>${p.key} <span class="muted">(${p.type}${p.required ? ', обязательное' : ''})</span> — ${p.name}</div>`)}</td>
  <td>${returnSpecs(r).map((v) => html`<div>${v.key} <span class="muted">(${v.type})</span> — ${v.name}</div>`)}</td>
  <td>${r.useSubscription ? 'ждёт ответа' : 'не ждёт'}</td>
</tr>`,
  );

  const runs = portal
    .robotRuns()
    .slice()
    .sort((a, b) => b.id - a.id)
    .slice(0, 50);
  const runRows = runs.map(
    (r) => html`<tr data-testid="run-${r.id}">
  <td>${r.id}</td><td>${r.activity && r.stageRobotId ? html`<span class="activity">${r.activity}</span> ` : ''}${robotName(ctx, r.clientId, r.code)}</td>
  <td><a href="/crm/${r.document.entity}/details/${r.document.id}/">${r.document.entity === 'deal' ? 'Сделка' : 'Лид'} #${r.document.id}</a></td>
  <td><span class="status status-${r.status}" data-testid="run-status-${r.id}">${STATUS_TEXT[r.status] ?? r.status}</span></td>
  <td>${dateTime(r.startedAt)}</td>
  <td><pre class="json">${r.properties && Object.keys(r.properties).length ? JSON.stringify(r.properties, null, 1) : ''}</pre></td>
  <td><pre class="json" data-testid="run-returns-${r.id}">${r.returnValues ? JSON.stringify(r.returnValues, null, 1) : ''}</pre></td>
  <td>${r.log.map((l) => html`<div>${l}</div>`)}</td>
</tr>`,
  );

  const kindTabs = html`<nav class="tabs"><a class="tab${kind === 'deal' ? ' active' : ''}" href="/automation/deal/" data-testid="automation-deal">Сделки</a><a class="tab${kind === 'lead' ? ' active' : ''}" href="/automation/lead/" data-testid="automation-lead">Лиды</a></nav>`;
  const funnel =
    kind === 'deal' && categories.length > 1
      ? html`<form method="get" action="${base}" class="toolbar"><label>Воронка: <select name="category" data-autosubmit data-testid="funnel">${categories.map(
          (c) => html`<option value="${c.id}"${raw(c.id === category ? ' selected' : '')}>${c.name}</option>`,
        )}</select></label><noscript><button class="btn btn-light btn-small">Показать</button></noscript></form>`
      : '';
  send(ctx, req, res, {
    status: error ? 400 : 200,
    title: `Роботы: ${kind === 'deal' ? 'сделки' : 'лиды'}`,
    section: 'automation',
    ...(error ? { flash: { kind: 'error' as const, text: error } } : {}),
    body: html`${kindTabs}${funnel}
${registered.length ? '' : html`<div class="card muted">Роботов пока нет: их регистрируют установленные приложения (bizproc.robot.add).</div>`}
<div class="columns">${columns}</div>
${
  registered.length
    ? html`<div class="card" style="margin-top:18px"><h2>Роботы приложений</h2>
<table class="grid" data-testid="robot-catalogue"><thead><tr><th>Код</th><th>Название</th><th>Приложение</th><th>Свойства</th><th>Возвращает</th><th>Ответ</th></tr></thead>
<tbody>${catalogue}</tbody></table></div>`
    : ''
}
<div class="card" style="margin-top:18px"><h2>Запуски роботов</h2>
<table class="grid" data-testid="robot-runs"><thead><tr><th>#</th><th>Робот</th><th>Документ</th><th>Статус</th><th>Запущен</th><th>Свойства</th><th>Результат</th><th>Журнал</th></tr></thead>
<tbody>${runRows.length ? runRows : html`<tr><td colspan="8" class="muted">Запусков ещё не было</td></tr>`}</tbody></table></div>`,
  });
}

function categoryParam(value: unknown): number {
  const n = Number.parseInt(typeof value === 'string' ? value : '0', 10);
  return Number.isSafeInteger(n) && n >= 0 ? n : 0;
}

export function automationRoutes(ctx: WebContext): Router {
  const router = express.Router();
  router.get('/automation', (_req, res) => res.redirect(302, '/automation/deal/'));
  router.get('/automation/:kind', (req, res, next) => {
    const kind = req.params.kind;
    if (!isAutoKind(kind)) return next();
    page(ctx, req, res, kind, kind === 'deal' ? categoryParam(req.query.category) : 0);
  });

  router.post('/automation/:kind/robots', (req, res, next) => {
    const kind = req.params.kind;
    if (!isAutoKind(kind)) return next();
    const category = kind === 'deal' ? categoryParam(formText(req.body, 'category')) : 0;
    const values: Record<string, string> = {};
    for (const [k, v] of Object.entries((req.body ?? {}) as Record<string, unknown>)) if (typeof v === 'string') values[k] = v;
    const fail = (text: string): void => page(ctx, req, res, kind, category, text, values);
    const clientId = formText(req.body, 'clientId');
    const code = formText(req.body, 'code');
    const stageId = formText(req.body, 'stageId');
    const robot = robotsFor(ctx, kind).find((r) => r.clientId === clientId && r.code === code);
    if (!robot) return fail(`Робот «${code}» не найден среди роботов установленных приложений`);
    const stages = kind === 'deal' ? ctx.portal.stages('deal', category) : ctx.portal.stages('lead');
    if (!stages.some((s) => s.STATUS_ID === stageId)) return fail(`Стадия «${stageId}» не найдена`);
    // What this robot can read: the return values of the robots already on the stage (they run before it).
    const earlier = ctx.portal.stageRobots().filter((r) => r.documentType === DOC[kind] && r.stageId === stageId);
    const badReference = (value: string): string | null => {
      for (const ref of activityReferences(value)) {
        const source = earlier.find((r) => activityName(r.id) === ref.activity);
        if (!source) return `{=${ref.activity}:${ref.key}} — на этой стадии нет робота ${ref.activity} перед этим`;
        const reg = registrationOf(ctx, source);
        if (!reg || !returnSpecs(reg).some((v) => v.key === ref.key)) return `{=${ref.activity}:${ref.key}} — робот ${ref.activity} не возвращает «${ref.key}»`;
      }
      return null;
    };
    const properties: Record<string, string> = {};
    for (const p of propSpecs(robot)) {
      const value = formText(req.body, `prop_${p.key}`).trim();
      if (p.required && !value) return fail(`Поле «${p.name}» (${p.key}): обязательное поле`);
      if (p.type === 'select' && value && p.options.length && !p.options.some((o) => o.value === value)) return fail(`Поле «${p.name}» (${p.key}): нет такого варианта «${value}»`);
      const bad = badReference(value);
      if (bad) return fail(`Поле «${p.name}» (${p.key}): ${bad}`);
      if (value) properties[p.key] = value;
    }
    const operand = formText(req.body, 'cond_operand').trim();
    const operator = formText(req.body, 'cond_operator').trim();
    const compared = formText(req.body, 'cond_value').trim();
    let condition: RobotCondition | null = null;
    if (operator !== '' || operand !== '' || compared !== '') {
      if (!isConditionOperator(operator)) return fail(`Условие (cond_operator): ${operator ? `нет оператора «${operator}»` : 'выберите оператор'} (${CONDITION_OPERATORS.join(' ')})`);
      if (!operand) return fail('Условие (cond_operand): укажите, что сравнивать, например {=A1:balance}');
      for (const [field, value] of [
        ['cond_operand', operand],
        ['cond_value', compared],
      ] as const) {
        const bad = badReference(value);
        if (bad) return fail(`Условие (${field}): ${bad}`);
      }
      condition = { operand, operator, value: compared };
    }
    try {
      ctx.portal.addStageRobot({ clientId, code, documentType: DOC[kind], stageId, properties, condition });
    } catch (err) {
      if (!(err instanceof PortalError)) throw err;
      return fail(`Робот не добавлен: ${describeError(err)}`);
    }
    res.redirect(303, `/automation/${kind}/?${kind === 'deal' ? `category=${category}&` : ''}done=robot-added`);
  });

  router.post('/automation/:kind/robots/:id/delete', (req, res, next) => {
    const kind = req.params.kind;
    if (!isAutoKind(kind)) return next();
    const category = kind === 'deal' ? categoryParam(formText(req.body, 'category')) : 0;
    const id = Number(req.params.id);
    if (!ctx.portal.stageRobots().some((r) => r.id === id)) return page(ctx, req, res, kind, category, `Робот #${String(req.params.id)} не найден`);
    try {
      ctx.portal.removeStageRobot(id);
    } catch (err) {
      if (!(err instanceof PortalError)) throw err;
      return page(ctx, req, res, kind, category, `Робот не удалён: ${describeError(err)}`);
    }
    res.redirect(303, `/automation/${kind}/?${kind === 'deal' ? `category=${category}&` : ''}done=robot-removed`);
  });
  return router;
}
