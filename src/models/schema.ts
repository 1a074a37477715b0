import { z } from 'zod';

/** One catalog entry: what the engine needs to run the model and what the fit estimate uses. */
export const modelEntrySchema = z
  .object({
    id: z.string().regex(/^[a-z0-9][a-z0-9._-]*$/, 'lowercase letters, digits, ".", "_" and "-"'),
  })
  .passthrough();

export const catalogSchema = z
  .object({
    version: z.literal(1),
    models: z.array(modelEntrySchema),
  })
  .strict();

export type ModelEntry = z.infer<typeof modelEntrySchema>;
export type Catalog = z.infer<typeof catalogSchema>;
