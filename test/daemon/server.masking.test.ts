// Masking for a remote upstream (issue 17.5, upstreams[].mask): the simulator plays the remote provider behind
// a recording proxy, which sees exactly what leaves the daemon. It must never see the customer's values, and
// the client (the real openai client, over HTTP) must get them back in the reply, streamed or not, also when
// a placeholder arrives split over several events (the simulator streams "<", "PHONE_1", ">" one by one).

import assert from 'node:assert/strict';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import type OpenAI from 'openai';
import { startHarness, type Harness } from './harness.js';

interface Wiretap {
  url: string;
  /** The chat completion request bodies that left the daemon. */
  sent: string[];
  /** Response events the remote sent back, one SSE event each (streams), or whole bodies. */
  received: string[];
}

/** A proxy in front of `target` that records what passes. */
async function wiretap(t: { after(fn: () => Promise<void>): void }, target: string): Promise<Wiretap> {
  const tap: Wiretap = { url: '', sent: [], received: [] };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      if (req.url === '/v1/chat/completions') tap.sent.push(body.toString('utf8'));
      const out = request(new URL(req.url ?? '/', target), { method: req.method, headers: req.headers }, (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.on('data', (c: Buffer) => {
          tap.received.push(
            ...c
              .toString('utf8')
              .split('\n\n')
              .filter((e) => e.trim() !== ''),
          );
          res.write(c);
        });
        up.on('end', () => res.end());
      });
      out.end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  tap.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  t.after(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  return tap;
}

const PHONE = '13812345678';
const MAIL = 'li.wei@example.com';
const SAID = `我的手机${PHONE}，邮箱${MAIL}，再说一遍${PHONE}`;

async function maskedHarness(t: Parameters<typeof startHarness>[0], mask = true): Promise<{ h: Harness; tap: Wiretap }> {
  let tap: Wiretap | null = null;
  const h = await startHarness(t, {
    // Unmasked, the remote upstream gets redacted text (store.redactUpstream "remote").
    ...(mask ? {} : { config: { store: { redactUpstream: 'remote' } } }),
    beforeStart: async (_paths, config) => {
      tap = await wiretap(t, config.daemon.upstream);
      config.daemon.allowRemote = true;
      config.daemon.upstreams = [{ name: 'cloud', url: tap.url, kind: 'remote', mask, models: {}, weight: 1 }];
    },
  });
  return { h, tap: tap! };
}

function assertNeverSent(tap: Wiretap): void {
  assert.ok(tap.sent.length > 0, 'the remote was asked');
  for (const body of tap.sent) {
    assert.ok(!body.includes(PHONE) && !body.includes(MAIL), `the remote got no value: ${body}`);
  }
}

test('a masked upstream gets placeholders, the same value the same one, and the client gets the values back', async (t) => {
  const { h, tap } = await maskedHarness(t);
  for (const sessionId of [undefined, 'masked-1']) {
    const reply = await h.client(sessionId ? { sessionId } : {}).chat.completions.create({
      model: 'cs-llm-sim',
      messages: [{ role: 'user', content: SAID }],
    });
    assert.match(reply.choices[0]!.message.content!, new RegExp(`You said: "${SAID.replace(/\./g, '\\.')}"`));
  }
  assertNeverSent(tap);
  const sent = JSON.parse(tap.sent[0]!) as { messages: Array<{ content: string }> };
  assert.equal(sent.messages.at(-1)!.content, '我的手机<PHONE_1>，邮箱<EMAIL_1>，再说一遍<PHONE_1>');
  const stored = (await (await fetch(`${h.daemon.url}/v1/sessions/masked-1`)).json()) as { messages: Array<{ content: string }> };
  assert.match(stored.messages[1]!.content, /我的手机\[PHONE\]，邮箱\[EMAIL\]/, 'the session stores redacted values, not placeholders');
});

test('streamed replies are restored too, with placeholders split over several events', async (t) => {
  const { h, tap } = await maskedHarness(t);
  for (const sessionId of [undefined, 'masked-2']) {
    const stream = await h.client(sessionId ? { sessionId } : {}).chat.completions.create({
      model: 'cs-llm-sim',
      messages: [{ role: 'user', content: SAID }],
      stream: true,
    });
    let text = '';
    for await (const chunk of stream as AsyncIterable<OpenAI.ChatCompletionChunk>) text += chunk.choices[0]?.delta?.content ?? '';
    assert.ok(text.includes(`"${SAID}"`), text);
    assert.ok(!text.includes('<PHONE') && !text.includes('EMAIL_1'), text);
  }
  assertNeverSent(tap);
  assert.ok(
    tap.received.some((e) => e.includes('"<"')) && !tap.received.some((e) => e.includes('<PHONE_1>')),
    'the remote streamed each placeholder in pieces',
  );
  const stored = (await (await fetch(`${h.daemon.url}/v1/sessions/masked-2`)).json()) as { messages: Array<{ content: string }> };
  assert.match(stored.messages[1]!.content, /我的手机\[PHONE\]/);
});

test("tool results and a participant's name are masked too, and the reply quoting them is restored", async (t) => {
  const { h, tap } = await maskedHarness(t);
  const reply = await h.client().chat.completions.create({
    model: 'cs-llm-sim',
    messages: [
      { role: 'user', name: '张伟', content: '查一下快递' },
      {
        role: 'assistant',
        content: null,
        tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'lookup', arguments: `{"phone": ${PHONE}}` } }],
      },
      { role: 'tool', tool_call_id: 'call_1', content: JSON.stringify({ receiver: MAIL, mobile: PHONE }) },
    ],
  });
  assert.equal(reply.choices[0]!.message.content, `According to lookup, receiver is ${MAIL}, mobile is ${PHONE}.`);
  assertNeverSent(tap);
  const sent = JSON.parse(tap.sent[0]!) as { messages: Array<{ name?: string; tool_calls?: Array<{ function: { arguments: string } }> }> };
  assert.equal(sent.messages[0]!.name, '<NAME_1>');
  assert.deepEqual(JSON.parse(sent.messages[1]!.tool_calls![0]!.function.arguments), { phone: '<PHONE_1>' });
});

test('who the customer is (user, safety_identifier, metadata) leaves masked, or redacted, with the messages', async (t) => {
  for (const mask of [true, false]) {
    const { h, tap } = await maskedHarness(t, mask);
    await h.client({ sessionId: `identity-${mask}` }).chat.completions.create({
      model: 'cs-llm-sim',
      messages: [{ role: 'user', content: SAID }],
      user: MAIL,
      safety_identifier: `phone:${PHONE}`,
      metadata: { callback: PHONE, channel: 'web' },
    });
    assertNeverSent(tap);
    const sent = JSON.parse(tap.sent[0]!) as Record<string, unknown>;
    assert.deepEqual(
      [sent.user, sent.safety_identifier, sent.metadata],
      mask
        ? ['<EMAIL_1>', 'phone:<PHONE_1>', { callback: '<PHONE_1>', channel: 'web' }]
        : ['[EMAIL]', 'phone:[PHONE]', { callback: '[PHONE]', channel: 'web' }],
      mask ? 'the same placeholders as the messages' : 'redacted as the store redacts',
    );
  }
});
