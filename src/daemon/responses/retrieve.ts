// GET and DELETE /v1/responses/:id, GET /v1/responses/:id/input_items: a stored response read back from its
// turn (its input items, then its output items) and its record; deleting it erases its turn.
import type { ResponseRecord } from '../../store/responses.js';
import { ApiError, sendJson } from '../api-error.js';
import type { RequestContext } from '../routes.js';
import type { DaemonServices } from '../services.js';
import { tenantOf } from './caller.js';
import { itemsOf, type Item } from './items.js';
import { listPage, listQuery } from './lists.js';
import { storedSettings } from './request.js';
import { parseResponseId, responseObject } from './response-object.js';

/** How long DELETE waits for the deleted text to leave the database and WAL files before it answers anyway. */
export const ERASE_WAIT_MS = 2000;

function notFound(id: string): ApiError {
  return new ApiError(404, `Response with id '${id}' not found.`, { param: 'response_id', code: 'response_not_found' });
}

async function stored(services: DaemonServices, ctx: RequestContext): Promise<{ tenant: string; id: string; record: ResponseRecord }> {
  const tenant = tenantOf(ctx);
  const id = ctx.params.id ?? '';
  const ref = parseResponseId(id);
  const record = ref ? await services.store.responses.get(tenant, ref.sessionId, ref.turn, services.now()) : null;
  if (!record) throw notFound(id);
  ctx.record.sessionId = record.sessionId;
  return { tenant, id, record };
}

/** The items of a response's turn: its input ones, or its output ones. */
async function itemsOfResponse(services: DaemonServices, tenant: string, r: ResponseRecord, part: 'input' | 'output'): Promise<Item[]> {
  const rows = await services.store.responses.rows(tenant, r.sessionId, r.turn, r.turn, services.now());
  const wanted = rows.filter((row) => (part === 'input' ? row.seq < r.firstSeq + r.inputs : row.seq >= r.outputSeq));
  return wanted.flatMap((row) => itemsOf(row.message, row.seq, r.sessionId));
}

export function getResponse(services: DaemonServices) {
  return async (ctx: RequestContext): Promise<void> => {
    const { tenant, id, record: r } = await stored(services, ctx);
    const output = await itemsOfResponse(services, tenant, r, 'output');
    const settings = storedSettings(r.settings);
    sendJson(
      ctx.res,
      200,
      responseObject({
        id,
        createdAt: r.createdAt,
        model: r.model,
        status: r.status as 'completed' | 'incomplete',
        output,
        usage: r.inputTokens === null && r.outputTokens === null ? null : { input: r.inputTokens ?? 0, output: r.outputTokens ?? 0 },
        previousResponseId: r.previousId,
        conversationId: r.conversation ? r.sessionId : null,
        store: true,
        settings,
        incompleteReason: r.status === 'incomplete' ? 'max_output_tokens' : null,
      }),
    );
  };
}

export function listInputItems(services: DaemonServices) {
  return async (ctx: RequestContext): Promise<void> => {
    const query = listQuery(ctx.query);
    const { tenant, record } = await stored(services, ctx);
    sendJson(ctx.res, 200, listPage(await itemsOfResponse(services, tenant, record, 'input'), query));
  };
}

export function deleteResponse(services: DaemonServices) {
  return async (ctx: RequestContext): Promise<void> => {
    const { tenant, id, record } = await stored(services, ctx);
    // After a turn in flight on its session, which may be reading it.
    const release = await services.locks.acquire(tenant, record.sessionId, services.config.daemon.sessionWaitMs).catch(() => {
      throw new ApiError(409, `response ${id} is busy with a turn on its conversation; try again when it has finished`, {
        code: 'session_busy',
      });
    });
    try {
      if (!(await services.store.responses.delete(tenant, record.sessionId, record.turn))) throw notFound(id);
      // Erasure: answered once the text is gone from the database and WAL files (or after ERASE_WAIT_MS, scrubbed: false).
      const scrubbed = await services.store.sessions.scrubbed(ERASE_WAIT_MS);
      sendJson(ctx.res, 200, { id, object: 'response', deleted: true, scrubbed });
    } finally {
      release();
    }
  };
}
