/**
 * The settings form's plain logic, apart from Vue: the draft is the program document itself
 * (SPEC 5.1), so what is validated, previewed and saved is exactly what the admin sees, and keys
 * the form has no section for yet (a newer schema's) travel through untouched.
 */
import { DEFAULT_PROGRAM, type Program, type ProgramError, type Reward } from '../../../../src/rules/program';

export type RewardKind = 'percent' | 'fixed';

export const rewardKind = (r: Reward | { percent?: unknown; fixed?: unknown }): RewardKind => ('fixed' in r && r.fixed !== undefined ? 'fixed' : 'percent');

/** The reward's number, whichever kind it is (null while the input is empty). */
export const rewardValue = (r: Reward | { percent?: unknown; fixed?: unknown }): number | null => {
  const v = rewardKind(r) === 'fixed' ? (r as { fixed?: unknown }).fixed : (r as { percent?: unknown }).percent;
  return typeof v === 'number' ? v : null;
};

/** A reward of the given kind; an empty value stays in the document as null so the schema names it. */
export const makeReward = (kind: RewardKind, value: number | null): Reward => ({ [kind]: value }) as unknown as Reward;

// ---------------------------------------------------------------------------------------------
// Presets: ready-made starting points. They replace the program's rules and keep what belongs to
// the portal (currency, landing page, code prefix, pipelines).
// ---------------------------------------------------------------------------------------------

export const PRESETS = ['classic', 'twoSided', 'network', 'tiered'] as const;
export type PresetId = (typeof PRESETS)[number];

type Rules = Omit<Program, 'currency' | 'landingUrl' | 'enrol' | 'rfm'> & { enrol: { onFirstWonDeal: boolean } };

/** The classic one-sided program: the server's default rules (SPEC 5.1), a fresh copy each time. */
const base = (): Rules => {
  const { currency: _currency, landingUrl: _landingUrl, rfm: _rfm, enrol, ...rules } = structuredClone(DEFAULT_PROGRAM);
  return { ...rules, enrol: { onFirstWonDeal: enrol.onFirstWonDeal } };
};

const PRESET_RULES: Record<PresetId, () => Rules> = {
  classic: base,
  twoSided: () => {
    const r = base();
    r.referral.referee = { fixed: 500 };
    return r;
  },
  network: () => {
    const r = base();
    r.referral.levels = [{ percent: 10 }, { percent: 5 }, { percent: 2 }];
    return r;
  },
  tiered: () => {
    const r = base();
    r.cashback = { enabled: true };
    r.tiers = {
      basis: 'won_amount',
      levels: [
        { name: 'Silver', from: 0, cashbackPercent: 3 },
        { name: 'Gold', from: 100_000, cashbackPercent: 5 },
        { name: 'Platinum', from: 500_000, cashbackPercent: 7 },
      ],
    };
    return r;
  },
};

/** The preset over the draft: portal-specific keys, the RFM boundaries (and keys the presets do not know) are kept. */
export function applyPreset(draft: Record<string, unknown>, preset: PresetId): Record<string, unknown> {
  const rules = PRESET_RULES[preset]();
  const current = draft as Partial<Program>;
  return {
    ...draft,
    ...rules,
    enrol: { ...rules.enrol, codePrefix: current.enrol?.codePrefix ?? '' },
    referral: { ...rules.referral, categories: [...(current.referral?.categories ?? [])] },
    currency: current.currency ?? 'RUB',
    landingUrl: current.landingUrl ?? null,
  };
}

// ---------------------------------------------------------------------------------------------
// Errors at their fields
// ---------------------------------------------------------------------------------------------

/**
 * Which of the shown fields displays an error: the field at exactly its path; else the nearest
 * field above it (`referral.levels.1.percent` → the level row `referral.levels.1`); else the
 * first field below it (`tiers.levels` → its first tier field). Null: no field shows it, the
 * form lists it beside Save.
 */
export function fieldFor(errorPath: string, fields: readonly string[]): string | null {
  if (fields.includes(errorPath)) return errorPath;
  let best: string | null = null;
  for (const f of fields) if (errorPath.startsWith(`${f}.`) && (best === null || f.length > best.length)) best = f;
  if (best !== null) return best;
  return fields.find((f) => errorPath !== '' && f.startsWith(`${errorPath}.`)) ?? null;
}

export function placeErrors(errors: readonly ProgramError[], fields: readonly string[]): { at: Map<string, string[]>; unplaced: ProgramError[] } {
  const at = new Map<string, string[]>();
  const unplaced: ProgramError[] = [];
  for (const e of errors) {
    const field = fieldFor(e.path, fields);
    if (field === null) unplaced.push(e);
    else at.set(field, [...(at.get(field) ?? []), e.message]);
  }
  return { at, unplaced };
}

// ---------------------------------------------------------------------------------------------
// Numbers typed by people: «100 000», «2,5»
// ---------------------------------------------------------------------------------------------

/** Empty → null; otherwise the number (NaN when it is not one, which the schema then names). */
export function parseNumber(text: string): number | null {
  const t = text.replace(/[\s\u00a0\u202f]/g, '').replace(',', '.');
  if (t === '') return null;
  return /^-?\d*\.?\d+$|^-?\d+\.$/.test(t) ? Number(t) : Number.NaN;
}
