/*
 * A small JSON Schema checker for tool arguments. Pure. The subset (docs/routing-and-tools.md):
 * `type` (string, number, integer, boolean, array, object, null, or a list of them), `properties`,
 * `required`, `additionalProperties` (false or a schema), `items`, `enum`, `const`, `description`
 * (ignored), and `minLength`/`maxLength`/`minimum`/`maximum`. Anything else in a schema is ignored, so a
 * richer schema still reaches the model unchanged; the daemon only checks what it understands.
 */

export type JsonSchema = Record<string, unknown>;

const KNOWN_TYPES = new Set(['string', 'number', 'integer', 'boolean', 'array', 'object', 'null']);

function typeOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  return typeof value;
}

function matchesType(value: unknown, type: string): boolean {
  switch (type) {
    case 'integer':
      return typeof value === 'number' && Number.isInteger(value);
    case 'number':
      return typeof value === 'number' && Number.isFinite(value);
    default:
      return typeOf(value) === type;
  }
}

function isSchema(value: unknown): value is JsonSchema {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function at(path: string, key: string | number): string {
  return typeof key === 'number' ? `${path}[${key}]` : path ? `${path}.${key}` : key;
}

/** Problems with a schema itself (so a bad config is refused at start, not at the first tool call). */
export function schemaProblems(schema: unknown, path = 'parameters'): string[] {
  if (!isSchema(schema)) return [`${path} must be an object`];
  const problems: string[] = [];
  const { type } = schema;
  if (type !== undefined) {
    const types = Array.isArray(type) ? type : [type];
    for (const t of types)
      if (typeof t !== 'string' || !KNOWN_TYPES.has(t)) problems.push(`${path}.type: unknown type ${JSON.stringify(t)}`);
  }
  if (schema.properties !== undefined) {
    if (!isSchema(schema.properties)) problems.push(`${path}.properties must be an object`);
    else for (const [k, v] of Object.entries(schema.properties)) problems.push(...schemaProblems(v, `${path}.properties.${k}`));
  }
  if (schema.required !== undefined && !(Array.isArray(schema.required) && schema.required.every((r) => typeof r === 'string'))) {
    problems.push(`${path}.required must be a list of property names`);
  }
  if (schema.enum !== undefined && !Array.isArray(schema.enum)) problems.push(`${path}.enum must be a list`);
  if (schema.items !== undefined) problems.push(...schemaProblems(schema.items, `${path}.items`));
  const extra = schema.additionalProperties;
  if (extra !== undefined && typeof extra !== 'boolean') problems.push(...schemaProblems(extra, `${path}.additionalProperties`));
  return problems;
}

/**
 * What is wrong with `value` under `schema`, as short sentences naming the argument ("order_id: expected
 * string, got number"); empty when it is valid. Stops at 10 problems.
 */
export function validateJson(value: unknown, schema: JsonSchema, path = ''): string[] {
  const problems: string[] = [];
  check(value, schema, path, problems);
  return problems;
}

function check(value: unknown, schema: JsonSchema, path: string, problems: string[]): void {
  if (problems.length >= 10) return;
  const name = path || '(arguments)';
  const { type } = schema;
  if (type !== undefined) {
    const types = (Array.isArray(type) ? type : [type]) as string[];
    if (!types.some((t) => matchesType(value, t))) {
      problems.push(`${name}: expected ${types.join(' or ')}, got ${typeOf(value)}`);
      return;
    }
  }
  if (Array.isArray(schema.enum) && !schema.enum.some((option) => deepEqual(option, value))) {
    problems.push(`${name}: must be one of ${schema.enum.map((o) => JSON.stringify(o)).join(', ')}`);
  }
  if ('const' in schema && !deepEqual(schema.const, value)) problems.push(`${name}: must be ${JSON.stringify(schema.const)}`);
  if (typeof value === 'string') {
    if (typeof schema.minLength === 'number' && value.length < schema.minLength)
      problems.push(`${name}: shorter than ${schema.minLength} characters`);
    if (typeof schema.maxLength === 'number' && value.length > schema.maxLength)
      problems.push(`${name}: longer than ${schema.maxLength} characters`);
  }
  if (typeof value === 'number') {
    if (typeof schema.minimum === 'number' && value < schema.minimum) problems.push(`${name}: below the minimum ${schema.minimum}`);
    if (typeof schema.maximum === 'number' && value > schema.maximum) problems.push(`${name}: above the maximum ${schema.maximum}`);
  }
  if (Array.isArray(value) && isSchema(schema.items)) {
    value.forEach((item, i) => check(item, schema.items as JsonSchema, at(path, i), problems));
  }
  if (typeOf(value) === 'object') {
    const object = value as Record<string, unknown>;
    const properties = isSchema(schema.properties) ? schema.properties : {};
    if (Array.isArray(schema.required)) {
      for (const key of schema.required as string[]) if (!(key in object)) problems.push(`${at(path, key)}: required`);
    }
    for (const [key, child] of Object.entries(object)) {
      const sub = properties[key];
      if (isSchema(sub)) check(child, sub, at(path, key), problems);
      else if (schema.additionalProperties === false) problems.push(`${at(path, key)}: not an allowed property`);
      else if (isSchema(schema.additionalProperties)) check(child, schema.additionalProperties, at(path, key), problems);
    }
  }
}

function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  if (ka.length !== kb.length) return false;
  return ka.every((k) => deepEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}
