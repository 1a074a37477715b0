import assert from 'node:assert/strict';
import { test } from 'node:test';
import OpenAI from 'openai';
import { foundIn } from '../../helpers/db-files.js';
import { cli, startHarness } from '../harness.js';

const MODEL = 'cs-llm-sim';

test('a stored response is retrieved, its input items listed in pages, and deleted without a trace in the files', async (t) => {
  const h = await startHarness(t);
  const client = h.client();
  const first = await client.responses.create({ model: MODEL, input: 'my name is Quinn-Marigold', metadata: { ticket: 'T-7781' } });
  const second = await client.responses.create({
    model: MODEL,
    previous_response_id: first.id,
    input: [
      { role: 'user', content: 'one' },
      { role: 'user', content: 'two' },
      { role: 'user', content: 'What is my name?' },
    ],
    temperature: 0.2,
  });
  const got = await client.responses.retrieve(second.id);
  assert.equal(got.id, second.id);
  assert.equal(got.output_text, 'Your name is Quinn-Marigold.');
  assert.deepEqual(got.output, second.output);
  assert.equal(got.previous_response_id, first.id);
  assert.equal(got.temperature, 0.2);
  assert.deepEqual((await client.responses.retrieve(first.id)).metadata, { ticket: 'T-7781' });

  const page = await client.responses.inputItems.list(second.id, { limit: 2, order: 'asc' });
  assert.deepEqual(
    page.data.map((i) => (i.type === 'message' && i.content[0]?.type === 'input_text' ? i.content[0].text : i.type)),
    ['one', 'two'],
  );
  assert.equal(page.has_more, true);
  const all: string[] = [];
  for await (const item of client.responses.inputItems.list(second.id, { limit: 1 })) all.push(item.id);
  assert.equal(all.length, 3);
  const ascending = (await client.responses.inputItems.list(second.id, { order: 'asc' })).data.map((i) => i.id);
  assert.deepEqual(all, ascending.reverse());

  const file = h.daemon.store.file;
  await h.daemon.store.maintenance.scrub();
  assert.deepEqual(foundIn(file, 'T-7781'), ['db'], 'the metadata was stored (in clear: no key configured)');
  await client.responses.delete(first.id);
  await assert.rejects(client.responses.retrieve(first.id), OpenAI.NotFoundError);
  await assert.rejects(client.responses.create({ model: MODEL, previous_response_id: first.id, input: 'hi' }), OpenAI.NotFoundError);
  assert.deepEqual(foundIn(file, 'my name is Quinn-Marigold'), [], 'the deleted input and reply are in neither file');
  assert.deepEqual(foundIn(file, 'T-7781'), [], 'nor is its metadata');
  // The later response stays, without the deleted turn.
  assert.equal((await client.responses.retrieve(second.id)).id, second.id);
});

test('conversations with the real openai client: create with items, respond in it, list, get and delete items, update, delete', async (t) => {
  const h = await startHarness(t);
  const client = h.client();
  const conversation = await client.conversations.create({
    metadata: { topic: 'demo' },
    items: [{ type: 'message', role: 'user', content: 'my name is Ines' }],
  });
  assert.match(conversation.id, /^conv_/);
  assert.deepEqual(conversation.metadata, { topic: 'demo' });

  const r1 = await client.responses.create({ model: MODEL, conversation: conversation.id, input: 'What is my name?' });
  assert.equal(r1.output_text, 'Your name is Ines.');
  assert.deepEqual(r1.conversation, { id: conversation.id });
  const r2 = await client.responses.create({ model: MODEL, conversation: conversation.id, input: 'how many messages have I sent?' });
  assert.match(r2.output_text, /You have sent 3 messages/);

  const items = await client.conversations.items.list(conversation.id, { order: 'asc' });
  assert.deepEqual(
    items.data.map((i) => [i.type, (i as { role?: string }).role]),
    [
      ['message', 'user'],
      ['message', 'user'],
      ['message', 'assistant'],
      ['message', 'user'],
      ['message', 'assistant'],
    ],
  );
  const added = await client.conversations.items.create(conversation.id, { items: [{ type: 'message', role: 'user', content: 'a note' }] });
  assert.equal(added.data.length, 1);
  const noteId = added.data[0]!.id!;
  const note = await client.conversations.items.retrieve(noteId, { conversation_id: conversation.id });
  assert.equal(note.id, noteId);
  await client.conversations.items.delete(noteId, { conversation_id: conversation.id });
  await assert.rejects(client.conversations.items.retrieve(noteId, { conversation_id: conversation.id }), OpenAI.NotFoundError);

  const updated = await client.conversations.update(conversation.id, { metadata: { topic: 'done' } });
  assert.deepEqual(updated.metadata, { topic: 'done' });
  assert.deepEqual((await client.conversations.retrieve(conversation.id)).metadata, { topic: 'done' });

  await assert.rejects(
    client.responses.create({ model: MODEL, conversation: conversation.id, previous_response_id: r1.id, input: 'x' }),
    OpenAI.BadRequestError,
  );
  const deleted = await client.conversations.delete(conversation.id);
  assert.equal(deleted.deleted, true);
  await assert.rejects(client.conversations.retrieve(conversation.id), OpenAI.NotFoundError);
  await assert.rejects(client.responses.retrieve(r1.id), OpenAI.NotFoundError);
  await assert.rejects(client.responses.create({ model: MODEL, conversation: conversation.id, input: 'x' }), OpenAI.NotFoundError);
  assert.deepEqual(foundIn(h.daemon.store.file, 'Ines'), []);
});

test('a conversation, a chain and an X-Session-Id session are the same record: /v1/sessions and cs-llm sessions list them, chat completions continue them', async (t) => {
  const h = await startHarness(t);
  const client = h.client();
  const conversation = await client.conversations.create({});
  const response = await client.responses.create({ model: MODEL, input: 'my name is Ravi' });
  const sessions = (await (await fetch(`${h.daemon.url}/v1/sessions`)).json()) as { data: Array<{ id: string }> };
  const ids = sessions.data.map((s) => s.id);
  assert.ok(ids.includes(conversation.id));
  const chain = response.id.replace(/^resp_1_/, '');
  assert.ok(ids.includes(chain), 'a chain is a session; its responses name it');
  const listed = await cli(['sessions', 'list', '--json'], { env: { CS_LLM_HOME: h.home } });
  assert.equal(listed.exitCode, 0, listed.stderr);
  const listedIds = (JSON.parse(listed.stdout) as { sessions: Array<{ id: string }> }).sessions.map((s) => s.id);
  assert.ok(listedIds.includes(conversation.id) && listedIds.includes(chain), `cs-llm sessions list: ${listed.stdout}`);
  const chat = await h
    .client({ sessionId: chain })
    .chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'What is my name?' }] });
  assert.equal(chat.choices[0]!.message.content, 'Your name is Ravi.');
  // ... and the chat turn is an item of the chain seen as a conversation.
  const items = await client.conversations.items.list(chain, { order: 'asc' });
  assert.equal(items.data.length, 4);
});

test("responses and conversations are the caller's tenant's: another tenant's are 404 on every route, ids and all", async (t) => {
  const h = await startHarness(t);
  const now = Date.now();
  const a = h.client({ apiKey: (await h.daemon.store.keys.create('shop-a', now, { tenant: 'shop-a' })).key });
  const b = h.client({ apiKey: (await h.daemon.store.keys.create('shop-b', now, { tenant: 'shop-b' })).key });
  const response = await a.responses.create({ model: MODEL, input: 'my name is Aiko' });
  const conversation = await a.conversations.create({ items: [{ type: 'message', role: 'user', content: 'my name is Aiko' }] });
  const item = (await a.conversations.items.list(conversation.id)).data[0]!;
  const chain = response.id.replace(/^resp_1_/, '');

  const notFound = (p: Promise<unknown>) => assert.rejects(p, OpenAI.NotFoundError);
  await notFound(b.responses.retrieve(response.id));
  await notFound(b.responses.inputItems.list(response.id));
  await notFound(b.responses.create({ model: MODEL, previous_response_id: response.id, input: 'What is my name?' }));
  await notFound(b.responses.create({ model: MODEL, conversation: conversation.id, input: 'What is my name?' }));
  await notFound(b.responses.create({ model: MODEL, input: [{ type: 'item_reference', id: item.id! }] }));
  await notFound(b.responses.delete(response.id));
  await notFound(b.conversations.retrieve(conversation.id));
  await notFound(b.conversations.retrieve(chain));
  await notFound(b.conversations.update(conversation.id, { metadata: { x: 'y' } }));
  await notFound(b.conversations.items.list(conversation.id));
  await notFound(b.conversations.items.create(conversation.id, { items: [{ type: 'message', role: 'user', content: 'x' }] }));
  await notFound(b.conversations.items.retrieve(item.id!, { conversation_id: conversation.id }));
  await notFound(b.conversations.items.delete(item.id!, { conversation_id: conversation.id }));
  await notFound(b.conversations.delete(conversation.id));

  // Still all there for their own tenant.
  assert.equal((await a.responses.retrieve(response.id)).id, response.id);
  const next = await a.responses.create({ model: MODEL, conversation: conversation.id, input: 'What is my name?' });
  assert.equal(next.output_text, 'Your name is Aiko.');
});
