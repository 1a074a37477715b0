import assert from 'node:assert/strict';
import { createCipher, parseKey } from '../../src/store/crypto.js';
import { storeTest } from '../helpers/stores.js';

const HOUR = 3_600_000;
const KEY_A = createCipher(parseKey(Buffer.alloc(32, 3).toString('base64'), 'test'));
const KEY_B = createCipher(parseKey(Buffer.alloc(32, 5).toString('base64'), 'test'));

const record = (settings: Record<string, unknown>, now: number) => ({
  record: {
    inputs: 1,
    outputs: 1,
    previousId: null,
    conversation: false,
    createdAt: now,
    model: 'm',
    status: 'completed',
    inputTokens: 5,
    outputTokens: 7,
    settings,
  },
});

storeTest(
  "a response's settings and a conversation's metadata are redacted, encrypted with the content key and rotated with it",
  async (t, backend) => {
    const now = Date.now();
    const store = await backend.open({ protection: { cipher: KEY_A } });
    const phone = '13812345678';
    const turn = [
      { role: 'user', content: `call me on ${phone}` },
      { role: 'assistant', content: 'Noted.' },
    ];
    await store.responses.commit(
      't1',
      'chain_a',
      'default',
      turn,
      HOUR,
      now,
      record({ metadata: { customer: 'Lin-Visible-Marker', phone } }, now),
    );
    await store.responses.createConversation('t1', 'conv_a', 'default', { note: `ring ${phone}` }, [], HOUR, now);
    await store.maintenance.scrub(5000);
    for (const text of [phone, 'Lin-Visible-Marker', 'call me on'])
      assert.deepEqual(await backend.textFound(text), [], `${text} is not stored`);

    const got = (await store.responses.get('t1', 'chain_a', 1, now))!;
    assert.deepEqual(got.settings, { metadata: { customer: 'Lin-Visible-Marker', phone: '[PHONE]' } });
    assert.deepEqual([got.firstSeq, got.inputs, got.outputSeq, got.inputTokens, got.outputTokens], [0, 1, 1, 5, 7]);
    assert.equal(await store.responses.get('t2', 'chain_a', 1, now), null, "another tenant's is not there");
    assert.deepEqual((await store.responses.thread('t1', 'conv_a'))!.metadata, { note: 'ring [PHONE]' });

    // After a rotation the old key opens nothing, the new one everything.
    await store.maintenance.rotateKey({ to: KEY_B, from: [KEY_A] });
    await store.close();
    const rotated = await backend.open({ protection: { cipher: KEY_B } });
    assert.deepEqual((await rotated.responses.get('t1', 'chain_a', 1, now))!.settings.metadata, {
      customer: 'Lin-Visible-Marker',
      phone: '[PHONE]',
    });
    assert.deepEqual((await rotated.responses.thread('t1', 'conv_a'))!.metadata, { note: 'ring [PHONE]' });
    await rotated.close();
    const old = await backend.open({ protection: { cipher: KEY_A } });
    await assert.rejects(old.maintenance.requireContentKeys(), /encrypted with key/);
  },
);

storeTest(
  'a session going takes its responses, settings and thread with it; an item deleted from a turn leaves its record on the rest',
  async (t, backend) => {
    const now = Date.now();
    const store = await backend.open();
    const turn = [
      { role: 'user', content: 'one' },
      { role: 'user', content: 'two' },
      { role: 'assistant', content: 'reply' },
    ];
    await store.responses.commit('t1', 'chain_b', 'default', turn, HOUR, now, record({ metadata: { k: 'Settings-Marker' } }, now));
    // A response whose settings are all defaults: its record goes in with the messages alone (one statement on PostgreSQL).
    const other = turn.map((m) => ({ ...m, content: `other ${m.role}` }));
    await store.responses.commit('t1', 'chain_c', 'default', other, HOUR, now, record({}, now));
    await store.responses.commit('t1', 'chain_c', 'default', other, HOUR, now + 1, record({}, now + 1));
    const plain = (await store.responses.get('t1', 'chain_c', 2, now + 1))!;
    assert.deepEqual([plain.firstSeq, plain.inputs, plain.outputSeq, plain.settings], [3, 1, 5, {}]);
    assert.equal((await store.responses.continuation('t1', 'chain_c', 2, now + 1))?.head.turns, 2);
    // The last message holds the record: deleting it moves the record to what is left of the turn.
    assert.equal(await store.responses.deleteRow('t1', 'chain_b', 2), true);
    assert.equal((await store.responses.get('t1', 'chain_b', 1, now))!.outputSeq, 2);
    assert.equal((await store.responses.rows('t1', 'chain_b', 1, 1, now)).length, 2);

    assert.equal(await store.sessions.delete('t1', 'chain_b'), true);
    assert.equal(await store.responses.get('t1', 'chain_b', 1, now), null);
    await store.maintenance.scrub(5000);
    assert.deepEqual(await backend.textFound('Settings-Marker'), []);
    assert.deepEqual(await backend.textFound('reply'), []);
  },
);
