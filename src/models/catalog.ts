/*
 * The model catalog: models.json shipped with the package, plus the user's additions from the config's
 * `models` array. A user entry with the id of a shipped one replaces it (to change engine args, say).
 */

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { z } from 'zod';
import { ConfigError, NotFoundError } from '../core/errors.js';
import { PACKAGE_ROOT } from '../core/version.js';
import { catalogSchema, modelEntrySchema, type Catalog, type ModelEntry } from './schema.js';

export const CATALOG_FILE = join(PACKAGE_ROOT, 'models.json');

export interface LoadCatalogOptions {
  /** config.models: user additions, validated here. */
  userModels?: unknown[];
  /** Read this catalog instead of the shipped models.json. */
  file?: string;
}

function firstIssue(error: z.ZodError): { field: string; message: string; more: string } {
  const issue = error.issues[0]!;
  return {
    field: issue.path.join('.') || '(entry)',
    message: issue.message,
    more: error.issues.length > 1 ? ` (and ${error.issues.length - 1} more problem(s))` : '',
  };
}

function readCatalogFile(file: string): Catalog {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new ConfigError(`cannot read the model catalog ${file}: ${(err as Error).message}`, {
      next: 'Reinstall cs-llm (the catalog ships with it), or fix the JSON of the file given.',
      cause: err,
    });
  }
  const parsed = catalogSchema.safeParse(raw);
  if (!parsed.success) {
    const { field, message, more } = firstIssue(parsed.error);
    throw new ConfigError(`model catalog ${file}: field "${field}": ${message}${more}`, {
      next: 'Fix that field in the catalog file (each entry is described in docs/gpu.md).',
    });
  }
  return parsed.data;
}

export function loadCatalog(options: LoadCatalogOptions = {}): Catalog {
  const file = options.file ?? CATALOG_FILE;
  const catalog = readCatalogFile(file);
  const models = [...catalog.models];
  for (const [i, raw] of (options.userModels ?? []).entries()) {
    const id =
      typeof raw === 'object' && raw !== null && typeof (raw as { id?: unknown }).id === 'string' ? (raw as { id: string }).id : null;
    const name = id ? `models[${i}] ("${id}")` : `models[${i}]`;
    const parsed = modelEntrySchema.safeParse(raw);
    if (!parsed.success) {
      const { field, message, more } = firstIssue(parsed.error);
      throw new ConfigError(`config ${name}: field "${field}": ${message}${more}`, {
        next: `Fix "${field}" of that model in your config's "models" list (see docs/gpu.md for every field), or remove the entry.`,
      });
    }
    const existing = models.findIndex((m) => m.id === parsed.data.id);
    if (existing === -1) models.push(parsed.data);
    else models[existing] = parsed.data;
  }
  return { version: 1, models };
}

export function findModel(catalog: Catalog, id: string): ModelEntry {
  const wanted = id.trim().toLowerCase();
  const model = catalog.models.find((m) => m.id === wanted || m.servedName.toLowerCase() === wanted || m.hfRepo?.toLowerCase() === wanted);
  if (!model) {
    throw new NotFoundError(`no model "${id}" in the catalog`, {
      details: [`known models: ${catalog.models.map((m) => m.id).join(', ') || '(none)'}`],
      next: 'Pick one of those ids (cs-llm models shows what fits this box), or add your model to the "models" list of your config.',
    });
  }
  return model;
}
