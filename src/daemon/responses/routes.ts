// The Responses and Conversations APIs' routes (docs/responses.md).
import type { Route } from '../routes.js';
import type { DaemonServices } from '../services.js';
import {
  addItems,
  createConversation,
  deleteConversation,
  deleteItem,
  getConversation,
  getItem,
  listItems,
  updateConversation,
} from './conversations.js';
import { createResponse } from './create.js';
import { deleteResponse, getResponse, listInputItems } from './retrieve.js';

export function responsesRoutes(services: DaemonServices): Route[] {
  return [
    { method: 'POST', path: '/v1/responses', handler: createResponse(services) },
    { method: 'GET', path: '/v1/responses/:id', handler: getResponse(services) },
    { method: 'DELETE', path: '/v1/responses/:id', handler: deleteResponse(services) },
    { method: 'GET', path: '/v1/responses/:id/input_items', handler: listInputItems(services) },
    { method: 'POST', path: '/v1/conversations', handler: createConversation(services) },
    { method: 'GET', path: '/v1/conversations/:id', handler: getConversation(services) },
    { method: 'POST', path: '/v1/conversations/:id', handler: updateConversation(services) },
    { method: 'DELETE', path: '/v1/conversations/:id', handler: deleteConversation(services) },
    { method: 'GET', path: '/v1/conversations/:id/items', handler: listItems(services) },
    { method: 'POST', path: '/v1/conversations/:id/items', handler: addItems(services) },
    { method: 'GET', path: '/v1/conversations/:id/items/:item_id', handler: getItem(services) },
    { method: 'DELETE', path: '/v1/conversations/:id/items/:item_id', handler: deleteItem(services) },
  ];
}
