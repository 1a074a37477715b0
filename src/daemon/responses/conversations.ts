// The Conversations API: a conversation is a session of the caller's tenant (one made here, or any other:
// a chain of responses, an X-Session-Id session), its items the session's stored messages. Adding items is
// a turn without a reply; deleting the conversation is the session's erasure.
import { ApiError, sendJson } from '../api-error.js';
import type { RequestContext } from '../routes.js';
import { SESSION_ID_PATTERN } from '../security.js';
import type { DaemonServices } from '../services.js';
import { profileOf, tenantOf } from './caller.js';
import { readJson, resolveEntries } from './create.js';
import { itemOf, itemsOf, parseItemId, type Item } from './items.js';
import { listPage, listQuery } from './lists.js';
import { parseMetadata, parseStoredItems } from './request.js';
import { newSessionId } from './response-object.js';
import { ERASE_WAIT_MS } from './retrieve.js';
import { conversationNotFound } from './target.js';

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** The :id of the route, a well-formed session id of a live session of the caller's tenant (else 404). */
async function conversation(services: DaemonServices, ctx: RequestContext) {
  const id = ctx.params.id ?? '';
  if (!SESSION_ID_PATTERN.test(id)) throw conversationNotFound(id);
  const tenant = tenantOf(ctx);
  const head = await services.store.responses.head(tenant, id, services.now());
  if (!head) throw conversationNotFound(id);
  ctx.record.sessionId = id;
  return { id, tenant, head };
}

async function conversationObject(services: DaemonServices, tenant: string, id: string, createdAt: number) {
  const thread = await services.store.responses.thread(tenant, id);
  return { id, object: 'conversation', created_at: Math.floor((thread?.createdAt ?? createdAt) / 1000), metadata: thread?.metadata ?? {} };
}

/** Runs `work` holding the conversation's session lock (a turn on it in flight finishes first). */
async function locked<T>(services: DaemonServices, tenant: string, id: string, work: () => Promise<T>): Promise<T> {
  const release = await services.locks.acquire(tenant, id, services.config.daemon.sessionWaitMs).catch(() => {
    throw new ApiError(409, `conversation ${id} is busy with a turn; try again when it has finished`, { code: 'session_busy' });
  });
  try {
    return await work();
  } finally {
    release();
  }
}

async function allItems(services: DaemonServices, tenant: string, id: string, turns: number): Promise<Item[]> {
  const rows = await services.store.responses.rows(tenant, id, 0, turns, services.now());
  return rows.flatMap((row) => itemsOf(row.message, row.seq, id));
}

export function createConversation(services: DaemonServices) {
  return async (ctx: RequestContext): Promise<void> => {
    const body = await readJson(services, ctx);
    if (!isObject(body)) throw new ApiError(400, 'the request body must be a JSON object', { code: 'invalid_body' });
    const metadata = parseMetadata(body.metadata);
    const tenant = tenantOf(ctx);
    const { name, profile } = profileOf(services, ctx);
    const now = services.now();
    const messages = await resolveEntries(services, tenant, parseStoredItems(body.items, 'items'), now);
    const id = newSessionId('conv');
    ctx.record.sessionId = id;
    await services.store.responses.createConversation(tenant, id, name, metadata, messages, profile.ttlSeconds * 1000, now);
    if (messages.length > 0) services.logStoredTurn?.(id, messages);
    sendJson(ctx.res, 200, { id, object: 'conversation', created_at: Math.floor(now / 1000), metadata });
  };
}

export function getConversation(services: DaemonServices) {
  return async (ctx: RequestContext): Promise<void> => {
    const { id, tenant, head } = await conversation(services, ctx);
    sendJson(ctx.res, 200, await conversationObject(services, tenant, id, head.createdAt));
  };
}

export function updateConversation(services: DaemonServices) {
  return async (ctx: RequestContext): Promise<void> => {
    const body = await readJson(services, ctx);
    if (!isObject(body)) throw new ApiError(400, 'the request body must be a JSON object', { code: 'invalid_body' });
    const metadata = parseMetadata(body.metadata);
    const { id, tenant, head } = await conversation(services, ctx);
    if (!(await services.store.responses.setMetadata(tenant, id, metadata, services.now()))) throw conversationNotFound(id);
    sendJson(ctx.res, 200, await conversationObject(services, tenant, id, head.createdAt));
  };
}

export function deleteConversation(services: DaemonServices) {
  return async (ctx: RequestContext): Promise<void> => {
    const { id, tenant } = await conversation(services, ctx);
    await locked(services, tenant, id, async () => {
      if (!(await services.store.sessions.delete(tenant, id))) throw conversationNotFound(id);
      const scrubbed = await services.store.sessions.scrubbed(ERASE_WAIT_MS);
      sendJson(ctx.res, 200, { id, object: 'conversation.deleted', deleted: true, scrubbed });
    });
  };
}

export function listItems(services: DaemonServices) {
  return async (ctx: RequestContext): Promise<void> => {
    const query = listQuery(ctx.query);
    const { id, tenant, head } = await conversation(services, ctx);
    sendJson(ctx.res, 200, listPage(await allItems(services, tenant, id, head.turns), query));
  };
}

export function addItems(services: DaemonServices) {
  return async (ctx: RequestContext): Promise<void> => {
    const body = await readJson(services, ctx);
    if (!isObject(body)) throw new ApiError(400, 'the request body must be a JSON object', { code: 'invalid_body' });
    const entries = parseStoredItems(body.items, 'items');
    if (entries.length === 0) throw new ApiError(400, 'items needs at least one item', { param: 'items', code: 'invalid_value' });
    const { id, tenant } = await conversation(services, ctx);
    const { name, profile } = profileOf(services, ctx);
    const messages = await resolveEntries(services, tenant, entries, services.now());
    await locked(services, tenant, id, async () => {
      const now = services.now();
      const head = await services.store.responses.head(tenant, id, now);
      if (!head) throw conversationNotFound(id);
      await services.store.responses.commit(tenant, id, name, messages, profile.ttlSeconds * 1000, now, null);
      services.logStoredTurn?.(id, messages);
      const data = messages.flatMap((m, i) => itemsOf(m, head.nextSeq + i, id));
      sendJson(ctx.res, 200, {
        object: 'list',
        data,
        first_id: data[0]?.id ?? null,
        last_id: data[data.length - 1]?.id ?? null,
        has_more: false,
      });
    });
  };
}

/** The item :item_id of the conversation, with the seq of the message it is stored as. */
async function itemParam(services: DaemonServices, ctx: RequestContext) {
  const c = await conversation(services, ctx);
  const itemId = ctx.params.item_id ?? '';
  const ref = parseItemId(itemId);
  const row = ref && ref.sessionId === c.id ? await services.store.responses.row(c.tenant, c.id, ref.seq, services.now()) : null;
  const item = ref && row ? itemOf(row.message, ref) : null;
  if (!ref || !item) throw new ApiError(404, `Item with id '${itemId}' not found.`, { param: 'item_id', code: 'item_not_found' });
  return { ...c, item, seq: ref.seq };
}

export function getItem(services: DaemonServices) {
  return async (ctx: RequestContext): Promise<void> => {
    sendJson(ctx.res, 200, (await itemParam(services, ctx)).item);
  };
}

/** Deletes the message the item is stored as (an item of a message that holds several takes them all); answers the conversation. */
export function deleteItem(services: DaemonServices) {
  return async (ctx: RequestContext): Promise<void> => {
    const { id, tenant, head, seq } = await itemParam(services, ctx);
    await locked(services, tenant, id, async () => {
      await services.store.responses.deleteRow(tenant, id, seq);
      await services.store.sessions.scrubbed(ERASE_WAIT_MS);
      sendJson(ctx.res, 200, await conversationObject(services, tenant, id, head.createdAt));
    });
  };
}
