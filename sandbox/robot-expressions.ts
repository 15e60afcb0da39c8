/**
 * What the automation does with a robot's settings when its turn comes (reference §8): the
 * expressions in its property values are resolved, and its condition decides whether it runs.
 *
 * Expressions, as Bitrix24's "Insert value" form writes them:
 * - `{=Document:FIELD}`: a field of the document the automation runs on;
 * - `{=<activity>:<key>}`: a return value of an earlier robot of the same run. bizproc.event.send's
 *   RETURN_VALUES "also appear in the Insert value form under the Additional results tab"
 *   (b24restdocs api-reference/bizproc/bizproc-robot/bizproc-robot-with-subscription.md), and
 *   the activity a value belongs to is named in the event token's middle part
 *   (`…|A51601_82584_96831_81132|…` in the same page's example). Bitrix24 names activities
 *   `A<random>`; the sandbox names a stage robot `A<its id>` (`{=A3:balance}`). That the
 *   expression is `{=<activity name>:<key>}` follows the `{=Document:FIELD}` form of the same
 *   editor; the docs show no literal example of it (our reading).
 *
 * A condition is the minimal one of Bitrix24's robot condition ("run only if"): one operand (an
 * expression or text), an operator and a value. Both sides compare as numbers when both read as
 * numbers (`1500`, `1500.00`, `1 500,50`, `1500.00|RUB`); otherwise `=` and `!=` compare text and
 * the ordering operators are false (an empty balance is not "more than 1000").
 */
import { CONDITION_OPERATORS, type ConditionOperator, type RobotCondition, type Row } from './types.js';

export function isConditionOperator(v: unknown): v is ConditionOperator {
  return typeof v === 'string' && (CONDITION_OPERATORS as readonly string[]).includes(v);
}

/** What expressions resolve against: the document and the return values of earlier robots by activity name. */
export interface ExpressionScope {
  document: Row;
  results: ReadonlyMap<string, Row>;
}

/** `{=Document:FIELD}` and `{=A…:key}` (activity names are `A` and digits, `_` between); other text is left as it is. */
const EXPRESSION = /\{=(Document|A\d[\d_]*):([A-Za-z0-9_]+)\}/g;

const text = (v: unknown): string => (v === undefined || v === null ? '' : Array.isArray(v) ? v.map(text).join(',') : String(v));

/** Resolves every expression of `value`; an unknown activity, key or field becomes '' as in Bitrix24. */
export function resolveExpressions(value: string, scope: ExpressionScope): string {
  return value.replace(EXPRESSION, (_m, source: string, key: string) => {
    if (source === 'Document') return text(scope.document[key]);
    return text(scope.results.get(source)?.[key]);
  });
}

/** The activity references of a value: `[{activity:'A1', key:'balance'}]` (Document fields are not listed). */
export function activityReferences(value: string): { activity: string; key: string }[] {
  return [...value.matchAll(EXPRESSION)].filter((m) => m[1] !== 'Document').map((m) => ({ activity: m[1]!, key: m[2]! }));
}

/** A number as the automation writes it, or null. */
export function expressionNumber(raw: string): number | null {
  const t = raw.replace(/\|[A-Z]{3}$/i, '').replace(/[\s\u00a0]/g, '').replace(',', '.');
  if (!/^-?\d+(\.\d+)?$/.test(t)) return null;
  return Number(t);
}

export interface ConditionVerdict {
  pass: boolean;
  /** The resolved condition, for the run log: `1500.00 > 1000`. */
  explained: string;
}

export function evaluateCondition(condition: RobotCondition, scope: ExpressionScope): ConditionVerdict {
  const left = resolveExpressions(condition.operand, scope).trim();
  const right = resolveExpressions(condition.value, scope).trim();
  const l = expressionNumber(left);
  const r = expressionNumber(right);
  let pass: boolean;
  if (l !== null && r !== null) {
    pass = compare(l, r, condition.operator);
  } else if (condition.operator === '=') pass = left === right;
  else if (condition.operator === '!=') pass = left !== right;
  else pass = false;
  return { pass, explained: `${left === '' ? '(пусто)' : left} ${condition.operator} ${right === '' ? '(пусто)' : right}` };
}

function compare(l: number, r: number, op: ConditionOperator): boolean {
  switch (op) {
    case '>':
      return l > r;
    case '>=':
      return l >= r;
    case '<':
      return l < r;
    case '<=':
      return l <= r;
    case '=':
      return l === r;
    case '!=':
      return l !== r;
  }
}

/** The activity name of a stage robot: what `{=A<n>:key}` names and what its event tokens carry. */
export const activityName = (stageRobotId: number): string => `A${stageRobotId}`;
