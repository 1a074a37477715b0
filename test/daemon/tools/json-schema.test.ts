import assert from 'node:assert/strict';
import { test } from 'node:test';
import { schemaProblems, validateJson } from '../../../src/daemon/tools/json-schema.js';

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

test('valid arguments pass the schema subset', () => {
  assert.deepEqual(validateJson({ order_id: '12345', quantity: 2, express: true, region: 'eu', items: ['a'], note: null }, order), []);
  assert.deepEqual(validateJson({ order_id: '12345' }, order), []);
});

test('each broken rule is named with the argument it concerns', () => {
  assert.deepEqual(validateJson({}, order), ['order_id: required']);
  assert.deepEqual(validateJson({ order_id: 12345 }, order), ['order_id: expected string, got number']);
  assert.deepEqual(validateJson({ order_id: '12' }, order), ['order_id: shorter than 4 characters']);
  assert.deepEqual(validateJson({ order_id: '1234', quantity: 1.5 }, order), ['quantity: expected integer, got number']);
  assert.deepEqual(validateJson({ order_id: '1234', quantity: 0 }, order), ['quantity: below the minimum 1']);
  assert.deepEqual(validateJson({ order_id: '1234', region: 'us' }, order), ['region: must be one of "eu", "cn"']);
  assert.deepEqual(validateJson({ order_id: '1234', items: ['a', 2] }, order), ['items[1]: expected string, got number']);
  assert.deepEqual(validateJson({ order_id: '1234', extra: 1 }, order), ['extra: not an allowed property']);
  assert.deepEqual(validateJson([], order), ['(arguments): expected object, got array']);
});

test('schemas outside the subset are reported; unknown keywords are ignored', () => {
  assert.deepEqual(schemaProblems(order), []);
  assert.deepEqual(schemaProblems({ type: 'object', properties: { a: { type: 'text' } } }), [
    'parameters.properties.a.type: unknown type "text"',
  ]);
  assert.deepEqual(schemaProblems({ type: 'object', required: 'a' }), ['parameters.required must be a list of property names']);
  assert.deepEqual(schemaProblems({ type: 'string', pattern: '^[0-9]+$' }), []);
});
