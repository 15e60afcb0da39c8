/**
 * The program settings form (issue 12) in happy-dom: errors at their fields as the admin types
 * (the server's schema), Save disabled while invalid, the live preview (debounced through the
 * injected delay, stale answers ignored), presets, save as a new version with the server's
 * refusals at their fields, and the version history.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { ApiError, type Api, type RequestOptions } from '../../client/src/api';
import SettingsPanel from '../../client/src/views/admin/SettingsPanel.vue';
import type { ProgramPreviewAnswer, ProgramVersionsAnswer } from '../../src/contract/admin';
import { previewDeal } from '../../src/rules/preview-deal';
import { DEFAULT_PROGRAM, parseCompleteProgram, type Program } from '../../src/rules/program';
import { byTestId, FakeApi, FakePortal, flushPromises, mountView, textOf, type Call } from './support';

afterEach(() => {
  document.body.innerHTML = '';
});

const NOW = new Date('2026-12-03T09:00:00.000Z');
const PREVIEW = 'POST /api/program/preview';

function program(change: (p: Program) => void = () => {}): Program {
  const p = structuredClone(DEFAULT_PROGRAM) as Program;
  change(p);
  return p;
}

/** The server's answer, priced by the same rule the server uses. */
function previewOf(call: Call): ProgramPreviewAnswer {
  const body = call.body as { program: unknown; deal: { amount: number; currency: string; depth: number } };
  const parsed = parseCompleteProgram(body.program);
  if (!parsed.ok) throw new ApiError(400, 'bad_request', 'invalid', parsed.errors.map((e) => ({ path: `program.${e.path}`, message: e.message })));
  const result = previewDeal(parsed.program, { amount: Math.round(body.deal.amount * 100), currency: body.deal.currency, depth: body.deal.depth }, NOW);
  return {
    currency: parsed.program.currency,
    deal: body.deal,
    priced: result.priced,
    entries: result.entries.map((e) => ({ ...e, amount: e.amount / 100, capped: e.capped / 100, availableAt: e.availableAt.toISOString() })),
    total: result.total / 100,
    fx: null,
  };
}

const versions: ProgramVersionsAnswer = {
  versions: [
    { version: 3, createdAt: '2026-12-02T14:05:00.000Z', createdBy: 12, changes: [{ path: 'referral.levels.0.percent', from: 10, to: 12 }, { path: 'referral.levels.1', from: { percent: 5 } }] },
    { version: 2, createdAt: '2026-12-01T10:00:00.000Z', createdBy: 1, changes: [{ path: 'referral.referee', from: null, to: { fixed: 500 } }] },
    { version: 1, createdAt: '2026-11-30T08:00:00.000Z', createdBy: null, changes: [] },
  ],
};

function admin(): FakePortal {
  const p = new FakePortal();
  p.placement = 'DEFAULT';
  p.isAdmin = true;
  p.pipelineList = [
    { id: 0, name: 'Общее' },
    { id: 4, name: 'Опт' },
  ];
  p.users.set(1, 'Анна Админова');
  return p;
}

/** A fake API whose preview answers the test releases one by one, in any order. */
class GatedApi extends FakeApi {
  readonly gates: (() => void)[] = [];
  gated = false;

  constructor() {
    super();
    const inner = this.api;
    const gated: Api = async <T>(path: string, options: RequestOptions = {}): Promise<T> => {
      if (this.gated && path === '/api/program/preview') await new Promise<void>((resolve) => this.gates.push(resolve));
      return inner<T>(path, options);
    };
    Object.defineProperty(this, 'api', { value: gated });
  }
}

async function open(start = program(), lang: 'en' | 'ru' = 'en') {
  const api = new GatedApi()
    .on('GET /api/program', { version: 3, program: start })
    .on('GET /api/program/versions', versions)
    .on(PREVIEW, previewOf);
  const mounted = await mountView(SettingsPanel, {}, { api, portal: admin(), lang });
  return { ...mounted, api };
}

type Mounted = Awaited<ReturnType<typeof open>>;

/** The kit's input puts the test id on the <input> itself. */
const inputOf = (m: Mounted, testid: string) => {
  const el = byTestId(m.wrapper, testid);
  return el.element.tagName === 'INPUT' ? el : el.find('input');
};

async function type(m: Mounted, testid: string, value: string): Promise<void> {
  await inputOf(m, testid).setValue(value);
  await flushPromises();
}

const errorAt = (m: Mounted, path: string): string => {
  const field = byTestId(m.wrapper, `field-${path}`);
  expect(field.exists(), `field ${path}`).toBe(true);
  // B24FormField renders the error in place of nothing else; its text is the field's last line.
  const error = field.find('[id$="-error"]');
  return error.exists() ? error.text() : '';
};

const saveDisabled = (m: Mounted): boolean => byTestId(m.wrapper, 'save').attributes('disabled') !== undefined;
const previews = (m: Mounted) => m.api.calls.filter((c) => `${c.method} ${c.path}` === PREVIEW);

describe('the settings form: errors at their fields', () => {
  it('a level percent over 100, then fixed', async () => {
    const m = await open();
    expect(saveDisabled(m)).toBe(false);
    await type(m, 'input-referral.levels.0', '120');
    expect(errorAt(m, 'referral.levels.0')).toBe('must be at most 100');
    expect(saveDisabled(m)).toBe(true);
    await type(m, 'input-referral.levels.0', '12');
    expect(errorAt(m, 'referral.levels.0')).toBe('');
    expect(saveDisabled(m)).toBe(false);
  });

  it('in Russian: the schema\'s messages are translated, an unknown one shown as it came', async () => {
    const m = await open(program(), 'ru');
    await type(m, 'input-referral.levels.0', '120');
    expect(errorAt(m, 'referral.levels.0')).toBe('не больше 100');
    await type(m, 'input-referral.windowDays', 'abc');
    expect(errorAt(m, 'referral.windowDays')).toBe('введите число');
    await type(m, 'input-currency', 'rub');
    expect(errorAt(m, 'currency')).toBe('трёхбуквенный код валюты заглавными буквами, например RUB');
    expect(byTestId(m.wrapper, 'invalid-note').text()).toBe('Ошибок в форме: 3');
  });

  it('windowDays 0', async () => {
    const m = await open();
    await type(m, 'input-referral.windowDays', '0');
    expect(errorAt(m, 'referral.windowDays')).toBe('must be at least 1');
    expect(saveDisabled(m)).toBe(true);
    await type(m, 'input-referral.windowDays', '30');
    expect(errorAt(m, 'referral.windowDays')).toBe('');
    expect(saveDisabled(m)).toBe(false);
  });

  it('tier thresholds not increasing, and duplicate tier names', async () => {
    const m = await open();
    await byTestId(m.wrapper, 'preset-tiered').trigger('click');
    await flushPromises();
    await type(m, 'input-tiers.levels.1.from', '0');
    expect(errorAt(m, 'tiers.levels.1.from')).toBe("must be greater than the previous level's 0");
    await type(m, 'input-tiers.levels.2.name', 'gold');
    expect(errorAt(m, 'tiers.levels.2.name')).toBe('duplicates another level\'s name "gold"');
    expect(saveDisabled(m)).toBe(true);
    await type(m, 'input-tiers.levels.1.from', '100 000');
    await type(m, 'input-tiers.levels.2.name', 'Platinum');
    expect(errorAt(m, 'tiers.levels.1.from')).toBe('');
    expect(errorAt(m, 'tiers.levels.2.name')).toBe('');
    expect(saveDisabled(m)).toBe(false);
  });

  it('a landing URL that is not http(s), and a lower-case code prefix', async () => {
    const m = await open();
    await type(m, 'input-landingUrl', 'javascript:alert(1)');
    expect(errorAt(m, 'landingUrl')).toBe('must be an http(s) URL');
    await type(m, 'input-enrol.codePrefix', 'ab');
    expect(errorAt(m, 'enrol.codePrefix')).toBe('must be upper-case: "AB"');
    expect(saveDisabled(m)).toBe(true);
    await type(m, 'input-landingUrl', 'https://shop.example/');
    await type(m, 'input-enrol.codePrefix', 'AB');
    expect(errorAt(m, 'landingUrl')).toBe('');
    expect(errorAt(m, 'enrol.codePrefix')).toBe('');
    expect(saveDisabled(m)).toBe(false);
  });

  it('cashback enabled without a percent and without tiers', async () => {
    const m = await open();
    await byTestId(m.wrapper, 'input-cashback.enabled').trigger('click');
    await flushPromises();
    expect(errorAt(m, 'cashback.percent')).toBe('is required when cashback is enabled and there are no tiers');
    expect(saveDisabled(m)).toBe(true);
    await type(m, 'input-cashback.percent', '2,5');
    expect(errorAt(m, 'cashback.percent')).toBe('');
    expect(saveDisabled(m)).toBe(false);
  });
});

describe('the live preview', () => {
  it('shows what a won deal pays and follows the edits, debounced through the injected delay', async () => {
    const m = await open(program((p) => (p.referral.referee = { fixed: 500 })), 'ru');
    expect(m.delays).toContain(400);
    expect(textOf(m.wrapper, 'preview-text')).toBe('Выигранная сделка на 100 000 ₽ по рекомендации принесёт рекомендателю 10 000 ₽, новому клиенту 500 ₽.');
    const before = previews(m).length;
    await byTestId(m.wrapper, 'add-level').trigger('click');
    await flushPromises();
    // An empty level is invalid: no request until it has a value.
    expect(previews(m).length).toBe(before);
    await type(m, 'input-referral.levels.1', '5');
    expect(previews(m).length).toBe(before + 1);
    expect((previews(m).at(-1)!.body as { deal: unknown }).deal).toEqual({ amount: 100_000, currency: 'RUB', depth: 5 });
    expect(textOf(m.wrapper, 'preview-text')).toBe('Выигранная сделка на 100 000 ₽ по рекомендации принесёт рекомендателю 10 000 ₽, уровню 2 5 000 ₽, новому клиенту 500 ₽.');
    await type(m, 'preview-amount', '20000');
    expect(textOf(m.wrapper, 'preview-text')).toBe('Выигранная сделка на 20 000 ₽ по рекомендации принесёт рекомендателю 2 000 ₽, уровню 2 1 000 ₽, новому клиенту 500 ₽.');
  });

  it('an older answer arriving after a newer one is ignored', async () => {
    const m = await open();
    m.api.gated = true;
    await type(m, 'input-referral.levels.0', '20');
    await type(m, 'input-referral.levels.0', '30');
    expect(m.api.gates).toHaveLength(2);
    m.api.gates[1]!();
    await flushPromises();
    expect(textOf(m.wrapper, 'preview-text')).toContain('pays the referrer RUB 30,000');
    m.api.gates[0]!();
    await flushPromises();
    expect(textOf(m.wrapper, 'preview-text')).toContain('pays the referrer RUB 30,000');
  });
});

describe('presets and save', () => {
  it('a preset fills the form and keeps the portal\'s keys; Save sends the complete document and shows the version', async () => {
    const start = program((p) => {
      p.currency = 'USD';
      p.landingUrl = 'https://shop.example/';
      p.enrol.codePrefix = 'SH';
      p.referral.categories = [4];
      p.expiry.days = 90;
    });
    const m = await open(start);
    await byTestId(m.wrapper, 'preset-network').trigger('click');
    await flushPromises();
    const input = (id: string) => (inputOf(m, id).element as HTMLInputElement).value;
    expect([input('input-referral.levels.0'), input('input-referral.levels.1'), input('input-referral.levels.2')]).toEqual(['10', '5', '2']);
    expect(input('input-expiry.days')).toBe('0');
    expect(input('input-currency')).toBe('USD');

    let saved: Program | null = null;
    m.api.on('PUT /api/program', (c: Call) => {
      saved = c.body as Program;
      return { version: 4, program: c.body };
    });
    m.api.on('GET /api/program/versions', { versions: [{ version: 4, createdAt: '2026-12-03T09:00:00.000Z', createdBy: 1, changes: [{ path: 'expiry.days', from: 90, to: 0 }] }, ...versions.versions] });
    await byTestId(m.wrapper, 'save').trigger('click');
    await flushPromises();
    const parsed = parseCompleteProgram(saved);
    expect(parsed.ok).toBe(true);
    expect(saved!.referral.levels).toEqual([{ percent: 10 }, { percent: 5 }, { percent: 2 }]);
    expect([saved!.currency, saved!.landingUrl, saved!.enrol.codePrefix, saved!.referral.categories]).toEqual(['USD', 'https://shop.example/', 'SH', [4]]);
    expect(byTestId(m.wrapper, 'saved').text()).toBe('Saved: version 4');
    expect(textOf(m.wrapper, 'program')).toContain('Version 4');
    // The history refreshed.
    expect(textOf(m.wrapper, 'version-4')).toContain('Expiry · Bonus expires after, days: 90 → 0');
  });

  it('each preset produces a valid complete document', async () => {
    const m = await open();
    for (const id of ['classic', 'twoSided', 'network', 'tiered']) {
      await byTestId(m.wrapper, `preset-${id}`).trigger('click');
      await flushPromises();
      expect(saveDisabled(m), id).toBe(false);
    }
    // A deal of 100 000 alone reaches Gold (from 100 000): 5 % cashback.
    expect(textOf(m.wrapper, 'preview-text')).toContain('the client RUB 5,000 cashback');
  });

  it('a server 400 detail is shown at its field and cleared by the next edit', async () => {
    const m = await open();
    m.api.on('PUT /api/program', new ApiError(400, 'bad_request', 'The program document is invalid', [{ path: 'referral.holdDays', message: 'must be at most 365' }]));
    await byTestId(m.wrapper, 'save').trigger('click');
    await flushPromises();
    expect(errorAt(m, 'referral.holdDays')).toBe('must be at most 365');
    expect(byTestId(m.wrapper, 'saved').exists()).toBe(false);
    await type(m, 'input-referral.holdDays', '14');
    expect(errorAt(m, 'referral.holdDays')).toBe('');
  });
});

describe('the version history', () => {
  it('shows who, when and what changed; unknown users by id', async () => {
    const m = await open(program(), 'ru');
    const v3 = textOf(m.wrapper, 'version-3');
    expect(v3).toContain('Версия 3');
    expect(v3).toContain('пользователь #12');
    expect(v3).toContain('2 декабря 2026 г., 14:05 UTC');
    expect(v3).toContain('Рекомендации · Уровень · #1 · процент: 10 → 12');
    expect(v3).toContain('Рекомендации · Уровень · #2: процент: 5 → —');
    const v2 = textOf(m.wrapper, 'version-2');
    expect(v2).toContain('Анна Админова');
    expect(v2).toContain('Рекомендации · Приветственный бонус новому клиенту: — → сумма: 500');
    expect(textOf(m.wrapper, 'version-1')).toContain('при установке');
    expect(m.api.calls.map((c) => `${c.method} ${c.path}`).filter((r) => r !== PREVIEW)).toEqual(['GET /api/program', 'GET /api/program/versions']);
  });
});
