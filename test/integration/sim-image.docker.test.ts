import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import type Docker from 'dockerode';
import OpenAI from 'openai';
import { REGISTRY, SIM_IMAGE, requireDocker } from '../helpers/docker.js';
import { TEST_LABEL, lastLogLines, removeContainer, removeLabelledContainers } from './containers.js';
import { pullImage, removeLocalImage } from './images.js';

// The simulator image as CI builds it (scripts/ci/build-sim-image.sh): pulled from the loopback registry
// for real, run with a published port, and spoken to by the real openai client.

const TEST_LABEL_VALUE = 'sim-image';
const SERVED_NAME = 'sim-image-test';
const READY_TIMEOUT_MS = 60_000;

/**
 * GET with a per-request timeout on a ref'd timer. Not AbortSignal.timeout: before the container listens,
 * docker-proxy accepts the connection and closes it, and Node 20's fetch then neither answers nor fails
 * until its signal fires; AbortSignal.timeout's timer is unref'd, so with nothing else pending the event
 * loop empties and node's test runner cancels the test ("Promise resolution is still pending").
 */
async function getStatus(url: string, timeoutMs: number): Promise<number> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(new Error(`no answer from ${url} within ${timeoutMs} ms`)), timeoutMs);
  try {
    const response = await fetch(url, { signal: controller.signal });
    await response.body?.cancel();
    return response.status;
  } finally {
    clearTimeout(timer);
  }
}

/** Polls /health until 200; fails at once with the logs when the container exits first. */
async function waitForHealth(container: Docker.Container, baseUrl: string): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  let last = 'no answer yet';
  while (Date.now() < deadline) {
    try {
      const status = await getStatus(`${baseUrl}/health`, 2_000);
      if (status === 200) return;
      last = `HTTP ${status}`;
    } catch (err) {
      last = (err as Error).message;
    }
    const state = (await container.inspect()).State;
    if (!state.Running) {
      throw new Error(
        `the simulator container exited (code ${state.ExitCode}) before /health answered 200:\n${await lastLogLines(container)}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(
    `the simulator's /health did not answer 200 within ${READY_TIMEOUT_MS} ms (last: ${last}):\n${await lastLogLines(container)}`,
  );
}

async function startSimContainer(t: TestContext, docker: Docker): Promise<string> {
  const container = await docker.createContainer({
    Image: SIM_IMAGE,
    // The image's ENTRYPOINT is node + the simulator, so Cmd carries vLLM-style arguments, as for vLLM.
    Cmd: [
      '--host',
      '0.0.0.0',
      '--port',
      '8000',
      '--model',
      'Qwen/Qwen2.5-7B-Instruct-AWQ',
      '--served-model-name',
      SERVED_NAME,
      '--load-time-ms',
      '500',
    ],
    Labels: { [TEST_LABEL]: TEST_LABEL_VALUE },
    ExposedPorts: { '8000/tcp': {} },
    // HostPort '' lets dockerd pick a free port on loopback.
    HostConfig: { PortBindings: { '8000/tcp': [{ HostIp: '127.0.0.1', HostPort: '' }] } },
  });
  t.after(() => removeContainer(container));
  await container.start();
  const binding = (await container.inspect()).NetworkSettings.Ports['8000/tcp']?.[0];
  assert.ok(binding, 'dockerd published no host port for 8000/tcp');
  assert.equal(binding.HostIp, '127.0.0.1');
  const baseUrl = `http://127.0.0.1:${binding.HostPort}`;
  await waitForHealth(container, baseUrl);
  return baseUrl;
}

test(
  'the simulator image pulled from the loopback registry serves the openai client, streaming and not',
  { timeout: 180_000 },
  async (t) => {
    const docker = await requireDocker(t);
    if (!docker) return;
    await removeLabelledContainers(docker, TEST_LABEL_VALUE);
    await removeLocalImage(docker, SIM_IMAGE);

    await pullImage(docker, SIM_IMAGE);
    const image = await docker.getImage(SIM_IMAGE).inspect();
    assert.deepEqual(image.Config.Entrypoint, ['/usr/local/bin/node', '/app/dist/sim/main.js']);

    const baseUrl = await startSimContainer(t, docker);
    const client = new OpenAI({ baseURL: `${baseUrl}/v1`, apiKey: 'not-checked', maxRetries: 0, timeout: 30_000 });

    const models = await client.models.list();
    assert.ok(
      models.data.some((model) => model.id === SERVED_NAME),
      `GET /v1/models lists ${SERVED_NAME}`,
    );

    const messages: OpenAI.Chat.ChatCompletionMessageParam[] = [
      { role: 'system', content: 'You are a test.' },
      { role: 'user', content: 'My name is Ada.' },
      { role: 'assistant', content: 'Hello Ada.' },
      { role: 'user', content: 'Say something about containers.' },
    ];

    const completion = await client.chat.completions.create({ model: SERVED_NAME, messages, max_tokens: 64 });
    assert.equal(completion.object, 'chat.completion');
    assert.equal(completion.model, SERVED_NAME);
    const choice = completion.choices[0];
    assert.ok(choice);
    assert.equal(choice.message.role, 'assistant');
    assert.ok(choice.message.content && choice.message.content.length > 0, 'the reply has text');
    assert.ok(choice.finish_reason === 'stop' || choice.finish_reason === 'length');

    const stream = await client.chat.completions.create({ model: SERVED_NAME, messages, max_tokens: 64, stream: true });
    let streamed = '';
    let finishReason: string | null = null;
    let chunks = 0;
    for await (const chunk of stream) {
      chunks += 1;
      assert.equal(chunk.object, 'chat.completion.chunk');
      const delta = chunk.choices[0];
      streamed += delta?.delta.content ?? '';
      finishReason = delta?.finish_reason ?? finishReason;
    }
    assert.ok(chunks > 1, 'the reply arrives in more than one chunk');
    assert.equal(finishReason, choice.finish_reason);
    // Replies are a deterministic function of the conversation, so both ways give the same text.
    assert.equal(streamed, choice.message.content);
  },
);

test("pulling a tag the loopback registry does not have rejects with the registry's not-found error", { timeout: 60_000 }, async (t) => {
  const docker = await requireDocker(t);
  if (!docker) return;
  const missing = `${REGISTRY}/cs-llm/sim:no-such-tag-${process.pid}`;
  await assert.rejects(pullImage(docker, missing), (err: Error) => {
    assert.match(err.message, /manifest unknown|not found/i);
    return true;
  });
});
