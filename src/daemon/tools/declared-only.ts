/*
 * A tool argument cut down to what its schema declares, at every depth. The model writes the arguments, and
 * JSON Schema lets any property through unless the schema says otherwise, so a nested object could carry
 * names the operator never declared ({"address": {"city": "上海", "internal_flag": true}}) to the endpoint.
 * Pure; run after validation, so the value already matches the schema.
 *
 * An object keeps the names its schema declares (`properties`, names matching `patternProperties`), looked
 * up through `$ref`, `allOf`, `anyOf`, `oneOf`, `if`/`then`/`else` and `dependentSchemas`: a name declared in
 * any branch is kept. It keeps every name when the schema opens it (`additionalProperties` or
 * `unevaluatedProperties` true or a schema), or declares no names at all (`{"type": "object"}`: the operator
 * asked for a free-form object). Array items are cut by `items` and `prefixItems`.
 */

type Schema = unknown;

/** The branches that apply to one value, their `$ref`s followed; cycles are cut by `seen`. */
function expand(schemas: readonly Schema[], root: Schema): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  const seen = new Set<unknown>();
  const visit = (s: Schema): void => {
    if (typeof s !== 'object' || s === null || Array.isArray(s) || seen.has(s)) return;
    seen.add(s);
    const schema = s as Record<string, unknown>;
    out.push(schema);
    if (typeof schema.$ref === 'string') visit(resolve(schema.$ref, root));
    for (const key of ['allOf', 'anyOf', 'oneOf'] as const) {
      const list = schema[key];
      if (Array.isArray(list)) list.forEach(visit);
    }
    visit(schema.then);
    visit(schema.else);
    const dependent = schema.dependentSchemas;
    if (typeof dependent === 'object' && dependent !== null) Object.values(dependent).forEach(visit);
  };
  schemas.forEach(visit);
  return out;
}

/** A local `$ref` ("#", "#/$defs/address"); undefined for anything else (ajv refused it at start). */
function resolve(ref: string, root: Schema): Schema {
  if (!ref.startsWith('#')) return undefined;
  let at: unknown = root;
  for (const raw of ref.slice(1).split('/').slice(1)) {
    const part = decodeURIComponent(raw).replace(/~1/g, '/').replace(/~0/g, '~');
    if (typeof at !== 'object' || at === null || !Object.hasOwn(at, part)) return undefined;
    at = (at as Record<string, unknown>)[part];
  }
  return at;
}

const isOpen = (v: unknown) => v !== undefined && v !== false;
const asObject = (v: unknown) => (typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : null);

function cutObject(value: Record<string, unknown>, branches: Record<string, unknown>[], root: Schema): Record<string, unknown> {
  const named = new Map<string, Schema[]>();
  const patterns: Array<[RegExp, Schema]> = [];
  const extra: Schema[] = [];
  let declaresNames = false;
  let open = false;
  for (const b of branches) {
    for (const [name, sub] of Object.entries(asObject(b.properties) ?? {})) {
      declaresNames = true;
      named.set(name, [...(named.get(name) ?? []), sub]);
    }
    for (const [pattern, sub] of Object.entries(asObject(b.patternProperties) ?? {})) {
      declaresNames = true;
      patterns.push([new RegExp(pattern, 'u'), sub]);
    }
    for (const key of ['additionalProperties', 'unevaluatedProperties'] as const) {
      if (b[key] === false) declaresNames = true;
      else if (isOpen(b[key])) {
        open = true;
        extra.push(b[key]);
      }
    }
  }
  if (!declaresNames && !open) return value;
  const out: Record<string, unknown> = {};
  // Defined, not assigned: a model's "__proto__" key stays a key (assigning it would set the prototype).
  const keep = (name: string, v: unknown) =>
    Object.defineProperty(out, name, { value: v, enumerable: true, writable: true, configurable: true });
  for (const [name, v] of Object.entries(value)) {
    const subs = [...(named.get(name) ?? []), ...patterns.filter(([p]) => p.test(name)).map(([, s]) => s)];
    if (subs.length > 0) keep(name, cut(v, subs, root));
    else if (open) keep(name, cut(v, extra, root));
  }
  return out;
}

function cutArray(value: unknown[], branches: Record<string, unknown>[], root: Schema): unknown[] {
  return value.map((item, i) => {
    const subs: Schema[] = [];
    for (const b of branches) {
      const prefix = b.prefixItems;
      if (Array.isArray(prefix) && i < prefix.length) subs.push(prefix[i]);
      else if (b.items !== undefined) subs.push(b.items);
    }
    return subs.length > 0 ? cut(item, subs, root) : item;
  });
}

function cut(value: unknown, schemas: readonly Schema[], root: Schema): unknown {
  if (typeof value !== 'object' || value === null) return value;
  // `true` (or a schema that is not an object) accepts anything as it is.
  if (schemas.some((s) => asObject(s) === null)) return value;
  const branches = expand(schemas, root);
  return Array.isArray(value) ? cutArray(value, branches, root) : cutObject(value as Record<string, unknown>, branches, root);
}

/** `value` with only what `schema` (a property's schema within `root`, the tool's parameters) declares. */
export function declaredOnly(value: unknown, schema: Schema, root: Schema): unknown {
  return cut(value, [schema], root);
}
