import assert from 'node:assert/strict';
import { test } from 'node:test';
import { compileArgumentsSchema, SchemaError } from '../../../src/daemon/tools/json-schema.js';

const order = {
  type: 'object',
  properties: {
    order_id: { type: 'string', minLength: 4 },
    quantity: { type: 'integer', minimum: 1 },
    express: { type: 'boolean' },
    region: { enum: ['eu', 'cn'] },
    items: { type: 'array', items: { type: 'string' } },
    note: { type: ['string', 'null'] },
  },
  required: ['order_id'],
  additionalProperties: false,
};

const validateOrder = compileArgumentsSchema(order);

test('valid arguments pass the schema', () => {
  assert.deepEqual(validateOrder({ order_id: '12345', quantity: 2, express: true, region: 'eu', items: ['a'], note: null }), []);
  assert.deepEqual(validateOrder({ order_id: '12345' }), []);
});

test('each broken rule is named with the argument it concerns', () => {
  assert.deepEqual(validateOrder({}), ['order_id: required']);
  assert.deepEqual(validateOrder({ order_id: 12345 }), ['order_id: expected string, got number']);
  assert.deepEqual(validateOrder({ order_id: '12' }), ['order_id: shorter than 4 characters']);
  assert.deepEqual(validateOrder({ order_id: '1234', quantity: 1.5 }), ['quantity: expected integer, got number']);
  assert.deepEqual(validateOrder({ order_id: '1234', quantity: 0 }), ['quantity: below the minimum 1']);
  assert.deepEqual(validateOrder({ order_id: '1234', region: 'us' }), ['region: must be one of "eu", "cn"']);
  assert.deepEqual(validateOrder({ order_id: '1234', items: ['a', 2] }), ['items[1]: expected string, got number']);
  assert.deepEqual(validateOrder({ order_id: '1234', extra: 1 }), ['extra: not an allowed property']);
  assert.deepEqual(validateOrder([]), ['(arguments): expected object, got array']);
  assert.deepEqual(validateOrder({ order_id: 1, quantity: 'x' }), [
    'order_id: expected string, got number',
    'quantity: expected integer, got string',
  ]);
});

test('every keyword the schema uses is checked: pattern, formats, item counts, multipleOf, anyOf, oneOf and the rest', () => {
  const check = (schema: Record<string, unknown>, good: unknown, bad: unknown, problem: string) => {
    const validate = compileArgumentsSchema({ type: 'object', properties: { v: schema } });
    assert.deepEqual(validate({ v: good }), [], `${JSON.stringify(good)} passes ${JSON.stringify(schema)}`);
    assert.deepEqual(validate({ v: bad }), [problem], `${JSON.stringify(bad)} fails ${JSON.stringify(schema)}`);
  };
  check({ type: 'string', pattern: '^[A-Z]{2}-[0-9]+$' }, 'SF-12345', '12345', 'v: must match pattern "^[A-Z]{2}-[0-9]+$"');
  check({ type: 'string', format: 'date' }, '2026-12-03', '2026-02-30', 'v: must match format "date"');
  check({ type: 'string', format: 'date-time' }, '2026-12-03T10:00:00Z', '2026-12-03 10:00', 'v: must match format "date-time"');
  check({ type: 'string', format: 'email' }, 'a@example.com', 'a@', 'v: must match format "email"');
  check({ type: 'string', format: 'uuid' }, '123e4567-e89b-12d3-a456-426614174000', '12345', 'v: must match format "uuid"');
  check({ type: 'array', items: { type: 'string' }, minItems: 1 }, ['a'], [], 'v: must NOT have fewer than 1 items');
  check({ type: 'array', items: { type: 'string' }, maxItems: 2 }, ['a', 'b'], ['a', 'b', 'c'], 'v: must NOT have more than 2 items');
  check(
    { type: 'array', items: { type: 'integer' }, uniqueItems: true },
    [1, 2],
    [1, 1],
    'v: must NOT have duplicate items (items ## 1 and 0 are identical)',
  );
  check({ type: 'number', multipleOf: 0.5 }, 1.5, 1.25, 'v: must be multiple of 0.5');
  check({ type: 'integer', exclusiveMinimum: 0 }, 1, 0, 'v: must be > 0');
  check({ type: 'string', maxLength: 3 }, 'abc', 'abcd', 'v: longer than 3 characters');
  check({ type: 'integer', maximum: 9 }, 9, 10, 'v: above the maximum 9');
  check({ const: 'eu' }, 'eu', 'cn', 'v: must be "eu"');
  check({ not: { type: 'null' } }, 1, null, 'v: must NOT be valid');
  check(
    { anyOf: [{ type: 'string', minLength: 3 }, { type: 'integer' }] },
    7,
    'ab',
    'v: matches none of the allowed forms: [v: shorter than 3 characters] or [v: expected integer, got string]',
  );
  check(
    { oneOf: [{ type: 'integer' }, { type: 'number', minimum: 5 }] },
    2,
    7,
    'v: matches more than one of the allowed forms (0 and 1); it must match exactly one',
  );
  check(
    { type: 'object', properties: { a: { type: 'string' }, b: { type: 'string' } }, dependentRequired: { a: ['b'] } },
    { a: 'x', b: 'y' },
    { a: 'x' },
    'v: must have property b when property a is present',
  );
  check(
    { type: 'object', properties: { a: { type: 'string' } }, minProperties: 1 },
    { a: 'x' },
    {},
    'v: must NOT have fewer than 1 properties',
  );
  const refs = compileArgumentsSchema({
    type: 'object',
    properties: { code: { $ref: '#/$defs/code' } },
    $defs: { code: { type: 'string', pattern: '^[0-9]{4}$' } },
  });
  assert.deepEqual(refs({ code: '12' }), ['code: must match pattern "^[0-9]{4}$"']);
  const conditional = compileArgumentsSchema({
    type: 'object',
    properties: { country: { type: 'string' }, zip: { type: 'string' } },
    if: { properties: { country: { const: 'US' } }, required: ['country'] },
    then: { required: ['zip'] },
  });
  assert.deepEqual(conditional({ country: 'US' }), ['zip: required', '(arguments): must match "then" schema']);
  assert.deepEqual(conditional({ country: 'CN' }), []);
});

test('a schema the validator cannot check whole is refused, naming the keyword and where it stands', () => {
  const refused = (schema: unknown, problem: RegExp) =>
    assert.throws(
      () => compileArgumentsSchema(schema),
      (err: unknown) => err instanceof SchemaError && problem.test(err.problems.join('; ')),
      `${JSON.stringify(schema)} -> ${problem}`,
    );
  refused(
    { type: 'object', properties: { a: { type: 'string', maxlength: 5 } } },
    /^parameters\.properties\.a: unknown keyword "maxlength"/,
  );
  refused({ type: 'object', properties: { a: { type: 'text' } } }, /^parameters\.properties\.a\.type: unknown type "text"/);
  refused(
    { type: 'object', properties: { a: { type: 'string', format: 'zipcode' } } },
    /^parameters\.properties\.a: unknown format "zipcode"/,
  );
  refused(
    { type: 'object', properties: { a: { minLength: 3 } } },
    /^parameters\.properties\.a: missing type "string" for keyword "minLength"/,
  );
  refused(
    { type: 'object', properties: { a: { type: 'string' } }, required: ['b'] },
    /^parameters\.required: "b" not in parameters\.properties/,
  );
  refused({ type: 'object', required: 'a' }, /^parameters\.required: must be array/);
  refused(
    { type: 'object', properties: { a: { type: 'string', pattern: '([a-z' } } },
    /^parameters\.properties\.a: Invalid regular expression/,
  );
  refused({ type: 'object', properties: { a: { $ref: '#/$defs/missing' } } }, /can't resolve reference #\/\$defs\/missing/);
  refused({ $schema: 'http://json-schema.org/draft-07/schema#', type: 'object' }, /^parameters\.\$schema: .*2020-12/);
  refused('object', /^parameters: must be an object/);
  refused(
    { type: 'object', properties: { a: { type: 'string', format: 'password' } } },
    /^parameters\.properties\.a: unknown format "password"/,
  );
  refused(
    { type: 'object', properties: { a: { type: 'string', contentMediaType: 'application/json' } } },
    /^parameters\.properties\.a: "contentMediaType" is an annotation in JSON Schema, never checked/,
  );
  // A property called like a keyword is no keyword: the walk that names the place skips property names.
  refused(
    { type: 'object', properties: { maxlength: { type: 'integer' }, b: { type: 'string', maxlength: 5 } } },
    /^parameters\.properties\.b: unknown keyword "maxlength"/,
  );
  assert.doesNotThrow(() => compileArgumentsSchema(order));
  const either = compileArgumentsSchema({
    type: 'object',
    properties: { order_id: { type: 'string' }, email: { type: 'string', format: 'email' } },
    anyOf: [{ required: ['order_id'] }, { required: ['email'] }],
  });
  assert.deepEqual(either({ email: 'a@example.com' }), []);
  assert.deepEqual(either({}), ['(arguments): matches none of the allowed forms: [order_id: required] or [email: required]']);
  assert.doesNotThrow(() =>
    compileArgumentsSchema({
      type: 'object',
      title: 'T',
      description: 'd',
      properties: { a: { type: 'string', default: 'x', examples: ['y'] } },
    }),
  );
});
