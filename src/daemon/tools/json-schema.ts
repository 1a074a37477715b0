/*
 * Tool argument schemas, checked by ajv (JSON Schema 2020-12, with ajv-formats). Each tool's schema is
 * compiled once, at start, in strict mode: a keyword ajv does not know, a format it cannot check, or a
 * keyword that cannot apply without its type (`minLength` on a schema without `"type": "string"`) would let
 * arguments through unchecked, so such a schema is refused with the place and the keyword. At run time the
 * problems are short sentences naming the argument ("order_id: must match pattern ..."): they go back to the
 * model as the tool's result, so it can correct its call.
 */

import { createRequire } from 'node:module';
import type { Ajv2020, ErrorObject } from 'ajv/dist/2020.js';
import type { FormatName, FormatsPlugin } from 'ajv-formats';

// Loaded at the first schema, not with the daemon: the two modules cost about 100 ms of CPU to load, which a
// daemon without tools (and every CLI command that imports the daemon) need not pay.
const require = createRequire(import.meta.url);

/** What is wrong with a value; empty when it is valid. */
export type ArgumentsValidator = (value: unknown) => string[];

/** A schema that cannot be used; `problems` name the place in the schema (`parameters.properties.a`). */
export class SchemaError extends Error {
  constructor(readonly problems: string[]) {
    super(problems.join('; '));
    this.name = 'SchemaError';
  }
}

const MAX_PROBLEMS = 10;
const DRAFT = 'https://json-schema.org/draft/2020-12/schema';

/** ajv-formats' formats except "password" and "binary", which it accepts whatever the value (annotations). */
const FORMATS = (
  'date time date-time iso-time iso-date-time duration uri uri-reference uri-template url email hostname ipv4 ipv6 regex uuid ' +
  'json-pointer json-pointer-uri-fragment relative-json-pointer byte int32 int64 float double'
).split(' ') as FormatName[];

/** Keywords JSON Schema 2020-12 defines as annotations only: ajv knows them but checks nothing. */
const UNCHECKED = ['contentMediaType', 'contentEncoding', 'contentSchema'];

let shared: Ajv2020 | null = null;

/** One ajv for every tool, made at the first schema. */
function ajv(): Ajv2020 {
  if (shared) return shared;
  // allowUnionTypes: `"type": ["string", "null"]` is plain JSON Schema; strict mode refuses it otherwise.
  // strictRequired would refuse `anyOf: [{required: ["a"]}, {required: ["b"]}]` (a required name with no
  // `properties` beside it), a common way to say "a or b"; the top-level `required` is checked below instead.
  // addUsedSchema false: a tool's $id is not registered, so two tools may use the same one.
  const { Ajv2020: Ajv } = require('ajv/dist/2020.js') as { Ajv2020: typeof Ajv2020 };
  const addFormats = (require('ajv-formats') as { default: FormatsPlugin }).default;
  shared = new Ajv({
    strict: true,
    strictRequired: false,
    allErrors: true,
    allowUnionTypes: true,
    verbose: true,
    logger: false,
    addUsedSchema: false,
  });
  addFormats(shared, FORMATS);
  return shared;
}

/** Compiles a tool's `parameters`; throws SchemaError naming what cannot be checked. */
export function compileArgumentsSchema(schema: unknown): ArgumentsValidator {
  if (typeof schema !== 'object' || schema === null || Array.isArray(schema)) throw new SchemaError(['parameters: must be an object']);
  const declared = (schema as { $schema?: unknown }).$schema;
  if (declared !== undefined && declared !== DRAFT && declared !== `${DRAFT}#`) {
    throw new SchemaError([`parameters.$schema: only JSON Schema 2020-12 is checked; remove "$schema" or set it to ${DRAFT}`]);
  }
  const checker = ajv();
  if (!checker.validateSchema(schema)) throw new SchemaError(metaProblems(checker.errors ?? []));
  for (const keyword of UNCHECKED) {
    const place = keywordPlace(schema, keyword, 'parameters');
    if (place) throw new SchemaError([`${place}: "${keyword}" is an annotation in JSON Schema, never checked: remove it`]);
  }
  const undeclared = requiredNotDeclared(schema);
  if (undeclared.length > 0) {
    throw new SchemaError([
      `parameters.required: ${undeclared.map((n) => JSON.stringify(n)).join(', ')} not in parameters.properties (only declared arguments are sent to the tool)`,
    ]);
  }
  let validate: ReturnType<Ajv2020['compile']>;
  try {
    validate = checker.compile(schema);
  } catch (err) {
    throw new SchemaError([compileProblem((err as Error).message, schema)]);
  }
  return (value) => (validate(value) ? [] : describeAll(validate.errors ?? []).slice(0, MAX_PROBLEMS));
}

/** Names the top-level `required` lists that `properties` does not declare: they could never be sent. */
function requiredNotDeclared(schema: object): string[] {
  const { required, properties } = schema as { required?: unknown; properties?: unknown };
  if (!Array.isArray(required)) return [];
  const declared = typeof properties === 'object' && properties !== null ? properties : {};
  return required.filter((name): name is string => typeof name === 'string' && !Object.hasOwn(declared, name));
}

/** "/properties/a/type" -> "parameters.properties.a.type". */
function schemaPlace(pointer: string): string {
  const parts = pointer
    .split('/')
    .slice(1)
    .map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
  return ['parameters', ...parts].join('.');
}

/** The schema against the 2020-12 meta-schema: the first problem at each place. */
function metaProblems(errors: ErrorObject[]): string[] {
  const seen = new Set<string>();
  const out: string[] = [];
  for (const e of errors) {
    const place = schemaPlace(e.instancePath);
    if (seen.has(place)) continue;
    seen.add(place);
    if (place.endsWith('.type') && typeof e.data === 'string') out.push(`${place}: unknown type ${JSON.stringify(e.data)}`);
    else out.push(`${place}: ${e.message ?? 'invalid'}`);
  }
  return out;
}

/** ajv's compile errors ("strict mode: unknown keyword: "x"") as "<place>: <what>". */
function compileProblem(message: string, schema: object): string {
  let what = message.replace(/^strict mode: /, '').replace(/ \(strict\w*\)$/, '');
  let place = 'parameters';
  const at = / (?:ignored in schema )?at (?:path )?"#([^"]*)"/.exec(what);
  if (at) {
    place = schemaPlace(at[1]!);
    what = what.slice(0, at.index) + what.slice(at.index + at[0].length);
  }
  const badPattern = /^Invalid regular expression: \/(.*)\/[a-z]*: /s.exec(what);
  if (badPattern) place = keywordPlace(schema, 'pattern', 'parameters', badPattern[1]) ?? place;
  const unknown = /^unknown keyword: "(.+)"$/.exec(what);
  if (unknown) {
    place = keywordPlace(schema, unknown[1]!, 'parameters') ?? place;
    what = `unknown keyword "${unknown[1]}" (the daemon could not check it: remove it, or express it with standard keywords)`;
  }
  if (/^unknown format /.test(what)) what += ` (checked formats: ${FORMATS.join(', ')})`;
  return `${place}: ${what}`;
}

/** Keywords whose value maps names to subschemas (the names are not keywords). */
const SCHEMA_MAPS = new Set(['properties', 'patternProperties', '$defs', 'definitions', 'dependentSchemas']);
/** Keywords whose value is data, not schemas. */
const DATA = new Set(['enum', 'const', 'default', 'examples', 'required', 'dependentRequired']);

/**
 * Where `keyword` is used as a keyword in the schema (with `value`, when given), which ajv's message does not
 * say: the first place, depth first.
 */
function keywordPlace(schema: unknown, keyword: string, place: string, value?: unknown): string | null {
  if (typeof schema !== 'object' || schema === null) return null;
  if (Array.isArray(schema)) {
    for (const [i, item] of schema.entries()) {
      const found = keywordPlace(item, keyword, `${place}[${i}]`, value);
      if (found) return found;
    }
    return null;
  }
  if (Object.hasOwn(schema, keyword) && (value === undefined || (schema as Record<string, unknown>)[keyword] === value)) return place;
  for (const [key, child] of Object.entries(schema)) {
    if (DATA.has(key) || typeof child !== 'object' || child === null) continue;
    if (SCHEMA_MAPS.has(key)) {
      for (const [name, sub] of Object.entries(child)) {
        const found = keywordPlace(sub, keyword, `${place}.${key}.${name}`, value);
        if (found) return found;
      }
    } else {
      const found = keywordPlace(child, keyword, `${place}.${key}`, value);
      if (found) return found;
    }
  }
  return null;
}

function typeOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'number' && Number.isInteger(value)) return 'integer';
  return typeof value;
}

/** "/items/1/name" -> "items[1].name"; the whole arguments object: "(arguments)". */
function argumentName(instancePath: string, child?: string): string {
  const parts = instancePath.split('/').slice(1);
  if (child !== undefined) parts.push(child);
  let name = '';
  for (const raw of parts) {
    const part = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    name += /^\d+$/.test(part) ? `[${part}]` : name === '' ? part : `.${part}`;
  }
  return name === '' ? '(arguments)' : name;
}

function describe(e: ErrorObject): string {
  const p = e.params as Record<string, unknown>;
  const name = argumentName(e.instancePath);
  switch (e.keyword) {
    case 'required':
      return `${argumentName(e.instancePath, String(p.missingProperty))}: required`;
    case 'additionalProperties':
      return `${argumentName(e.instancePath, String(p.additionalProperty))}: not an allowed property`;
    case 'unevaluatedProperties':
      return `${argumentName(e.instancePath, String(p.unevaluatedProperty))}: not an allowed property`;
    case 'type': {
      const got = typeOf(e.data);
      // A fraction is a number, not an integer: "expected integer, got number".
      return `${name}: expected ${String(p.type).split(',').join(' or ')}, got ${got === 'integer' ? 'number' : got}`;
    }
    case 'enum':
      return `${name}: must be one of ${(p.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`;
    case 'const':
      return `${name}: must be ${JSON.stringify(p.allowedValue)}`;
    case 'minLength':
      return `${name}: shorter than ${String(p.limit)} characters`;
    case 'maxLength':
      return `${name}: longer than ${String(p.limit)} characters`;
    case 'minimum':
      return `${name}: below the minimum ${String(p.limit)}`;
    case 'maximum':
      return `${name}: above the maximum ${String(p.limit)}`;
    case 'false schema':
      return `${name}: not allowed`;
    default:
      return `${name}: ${e.message ?? `fails ${e.keyword}`}`;
  }
}

/**
 * ajv's errors as sentences. An anyOf/oneOf that failed comes with its branches' errors: they are folded into
 * one sentence per combinator ("matches none of the allowed forms: [...] or [...]"), outermost first.
 */
function describeAll(errors: ErrorObject[]): string[] {
  const inside = new Map<ErrorObject, ErrorObject[]>();
  const folded = new Set<ErrorObject>();
  const combinators = errors
    .filter((e) => e.keyword === 'anyOf' || e.keyword === 'oneOf')
    .sort((a, b) => a.schemaPath.length - b.schemaPath.length);
  for (const c of combinators) {
    if (folded.has(c)) continue;
    const branchErrors = errors.filter((e) => e !== c && e.schemaPath.startsWith(`${c.schemaPath}/`));
    for (const e of branchErrors) folded.add(e);
    inside.set(c, branchErrors);
  }
  const out: string[] = [];
  for (const e of errors) {
    if (folded.has(e)) continue;
    const branchErrors = inside.get(e);
    if (!branchErrors) {
      out.push(describe(e));
      continue;
    }
    const name = argumentName(e.instancePath);
    const passing = (e.params as { passingSchemas?: number[] | null }).passingSchemas;
    if (e.keyword === 'oneOf' && Array.isArray(passing)) {
      out.push(`${name}: matches more than one of the allowed forms (${passing.join(' and ')}); it must match exactly one`);
      continue;
    }
    const branches = new Map<string, ErrorObject[]>();
    for (const b of branchErrors) {
      const index = b.schemaPath.slice(e.schemaPath.length + 1).split('/')[0]!;
      branches.set(index, [...(branches.get(index) ?? []), b]);
    }
    const forms = [...branches.values()].map((list) => `[${describeAll(list).join('; ')}]`);
    out.push(`${name}: matches none of the allowed forms: ${forms.join(' or ')}`);
  }
  return out;
}
