// OpenAI's list shape for items (input items of a response, items of a conversation): data, first_id,
// last_id, has_more, paged with after (an item id), limit (1-100, default 20) and order (asc, or desc by
// default). Pure.

import { ApiError } from '../api-error.js';
import type { Item } from './items.js';

export interface ListQuery {
  after: string | null;
  limit: number;
  order: 'asc' | 'desc';
}

export function listQuery(query: string): ListQuery {
  const q = new URLSearchParams(query);
  const limitText = q.get('limit');
  const limit = limitText === null ? 20 : Number(limitText);
  if (!Number.isInteger(limit) || limit < 1 || limit > 100) {
    throw new ApiError(400, 'limit must be a whole number from 1 to 100', { param: 'limit', code: 'invalid_value' });
  }
  const order = q.get('order') ?? 'desc';
  if (order !== 'asc' && order !== 'desc') throw new ApiError(400, 'order must be asc or desc', { param: 'order', code: 'invalid_value' });
  return { after: q.get('after'), limit, order };
}

/** One page of `items` (oldest first) in the query's order, after the item it names. */
export function listPage(items: readonly Item[], query: ListQuery): Record<string, unknown> {
  const ordered = query.order === 'asc' ? items : [...items].reverse();
  let start = 0;
  if (query.after !== null) {
    const at = ordered.findIndex((i) => i.id === query.after);
    if (at < 0) throw new ApiError(400, `after names no item of this list: ${query.after}`, { param: 'after', code: 'invalid_value' });
    start = at + 1;
  }
  const data = ordered.slice(start, start + query.limit);
  return {
    object: 'list',
    data,
    first_id: data[0]?.id ?? null,
    last_id: data[data.length - 1]?.id ?? null,
    has_more: start + query.limit < ordered.length,
  };
}
