/*
 * Small checks that accept a value and return what a zod schema of the same shape would (defaults filled
 * in, keys in the shape's order), or FAIL. For the hot and start-up paths that must not load zod (#21):
 * they are written to be stricter than the schema, never looser, so whatever they refuse goes to zod, which
 * accepts it after all or names the bad field. A test gives both the same inputs (test/core/config-check).
 */

export const FAIL: unique symbol = Symbol('fail');
export type Check<T = unknown> = (value: unknown) => T | typeof FAIL;

/** A shape's field: what an absent (or undefined) value becomes. */
interface Field {
  check: Check;
  /** Absent: this value (a fresh copy each time); undefined: the field stays absent. */
  absent?: () => unknown;
  optional?: boolean;
}
const FIELD = Symbol('field');
type FieldCheck = Check & { [FIELD]?: Field };

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export interface NumberRules {
  int?: boolean;
  min?: number;
  max?: number;
  gt?: number;
}

export const num =
  (rules: NumberRules = {}): Check<number> =>
  (v) =>
    typeof v === 'number' &&
    Number.isFinite(v) &&
    (!rules.int || Number.isSafeInteger(v)) &&
    (rules.min === undefined || v >= rules.min) &&
    (rules.max === undefined || v <= rules.max) &&
    (rules.gt === undefined || v > rules.gt)
      ? v
      : FAIL;

export interface StringRules {
  min?: number;
  regex?: RegExp;
  /** zod's url(): parseable by URL; here also no surrounding blanks, tabs or newlines, which zod rewrites. */
  url?: boolean;
  refine?: (v: string) => boolean;
}

export const str =
  (rules: StringRules = {}): Check<string> =>
  (v) =>
    typeof v === 'string' &&
    (rules.min === undefined || v.length >= rules.min) &&
    (!rules.regex || ((rules.regex.lastIndex = 0), rules.regex.test(v))) &&
    (!rules.url || (v === v.trim() && !/[\t\n\r]/.test(v) && URL.canParse(v))) &&
    (!rules.refine || rules.refine(v))
      ? v
      : FAIL;

export const bool: Check<boolean> = (v) => (typeof v === 'boolean' ? v : FAIL);

export const oneOf =
  (values: readonly string[]): Check<string> =>
  (v) =>
    typeof v === 'string' && values.includes(v) ? v : FAIL;

/** Anything (zod's unknown()). */
export const any: Check = (v) => v;

export const nullable =
  <T>(check: Check<T>): Check<T | null> =>
  (v) =>
    v === null ? null : check(v);

export const array =
  <T>(item: Check<T>, min = 0): Check<T[]> =>
  (v) => {
    if (!Array.isArray(v) || v.length < min) return FAIL;
    const out: T[] = [];
    for (const x of v) {
      const r = item(x);
      if (r === FAIL) return FAIL;
      out.push(r);
    }
    return out;
  };

/** A record with string keys (matching `key`, when given) and checked values. */
export const record =
  <T>(value: Check<T>, key?: RegExp): Check<Record<string, T>> =>
  (v) => {
    if (!isPlainObject(v) || Object.getPrototypeOf(v) !== Object.prototype) return FAIL;
    const out: Record<string, T> = {};
    for (const k of Object.keys(v)) {
      // "__proto__" (JSON.parse makes it an own key) would set the copy's prototype: zod's to judge.
      if (k === '__proto__' || (key && !key.test(k))) return FAIL;
      const r = value(v[k]);
      if (r === FAIL) return FAIL;
      out[k] = r;
    }
    return out;
  };

const field = (check: Check, f: Omit<Field, 'check'>): Check => Object.assign((v: unknown) => check(v), { [FIELD]: { check, ...f } });

/** zod's optional(): an absent field stays absent. */
export const optional = (check: Check): Check => field(check, { optional: true });

/** zod's default(value): an absent field takes the value as it is (not checked). */
export const withDefault = (check: Check, value: () => unknown): Check => field(check, { absent: value });

/** zod's prefault({}): an absent field is checked as an empty object, so its own defaults fill it. */
export const prefault = (check: Check): Check => field(check, { absent: () => check({}) });

/**
 * A strict object (unknown keys refused) of the given fields, in their order; `refine` sees the result.
 */
export function object(shape: Record<string, Check>, refine?: (out: Record<string, unknown>) => boolean): Check<Record<string, unknown>> {
  const fields = Object.entries(shape).map(([name, check]) => [name, (check as FieldCheck)[FIELD] ?? { check }] as const);
  return (v) => {
    if (!isPlainObject(v) || Object.getPrototypeOf(v) !== Object.prototype) return FAIL;
    for (const k of Object.keys(v)) if (!Object.hasOwn(shape, k)) return FAIL;
    const out: Record<string, unknown> = {};
    for (const [name, f] of fields) {
      // Undefined (a flag not given) as zod takes it: a default or prefault applies, an optional field stays
      // present and undefined; absent, it stays absent.
      if (v[name] === undefined) {
        if (f.absent) {
          const d = f.absent();
          if (d === FAIL) return FAIL;
          out[name] = d;
        } else if (!f.optional) return FAIL;
        else if (Object.hasOwn(v, name)) out[name] = undefined;
        continue;
      }
      const r = f.check(v[name]);
      if (r === FAIL) return FAIL;
      out[name] = r;
    }
    return !refine || refine(out) ? out : FAIL;
  };
}
