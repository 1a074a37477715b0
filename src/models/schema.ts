/*
 * One catalog entry: what the engine needs to run the model and what the fit estimate uses. Figures are
 * facts of the published repository (config.json and the weight files); `source` says where they come from.
 * Entries for the vLLM engine name a Hugging Face repo; entries for the CPU engine (llama.cpp) name a GGUF
 * file instead, so the schema is open to both.
 */

import { z } from 'zod';

export const engineKindSchema = z.enum(['vllm', 'cpu']);

/**
 * Where a GGUF comes from and how to know it is the right one. `file` is joined to a local folder, so it is
 * a plain file name. The download URL is `url` when given, else `<endpoint>/<hfRepo>/resolve/main/<file>`
 * (Hugging Face's layout; the endpoint is https://huggingface.co or a mirror, src/models/gguf-source.ts).
 */
export const ggufSchema = z
  .object({
    /** File name of the GGUF (in hfRepo, or in the local model directory). */
    file: z
      .string()
      .min(1)
      .regex(/^[^/\\]+$/, 'a file name, without a folder')
      .refine((f) => !f.startsWith('.'), 'must not start with "."'),
    /** The Hugging Face repository (owner/name) that holds the file. */
    hfRepo: z
      .string()
      .regex(/^[\w.-]+\/[\w.-]+$/, 'owner/name')
      .optional(),
    /** A full download URL, for files that are not laid out like a Hugging Face repository. */
    url: z
      .string()
      .url()
      .refine((u) => /^https?:\/\//i.test(u), 'an http(s) URL')
      .optional(),
    sha256: z
      .string()
      .regex(/^[0-9a-f]{64}$/, '64 lowercase hex digits')
      .optional(),
    /** Bytes of the file, checked after a download (and equal to the entry's weightsBytes). */
    sizeBytes: z.number().int().positive().optional(),
  })
  .passthrough();

export const modelEntrySchema = z
  .object({
    id: z.string().regex(/^[a-z0-9][a-z0-9._-]*$/, 'lowercase letters, digits, ".", "_" and "-"'),
    /** Hugging Face repository, as vLLM's --model takes it. */
    hfRepo: z
      .string()
      .regex(/^[\w.-]+\/[\w.-]+$/, 'owner/name')
      .optional(),
    /**
     * The repository commit the figures were taken from, passed to vLLM as --revision so the engine loads
     * exactly those files (a moving branch could change the weights under a measurement).
     */
    revision: z
      .string()
      .regex(/^[0-9a-f]{40}$/, 'a full commit id (40 lowercase hex digits)')
      .optional(),
    /** The name clients use in the OpenAI "model" field (vLLM's --served-model-name). */
    servedName: z.string().min(1),
    family: z.string().min(1),
    /** Parameter count, e.g. 14.7e9. */
    parameters: z.number().positive(),
    quantization: z.enum(['awq', 'gptq', 'fp8', 'gguf', 'none']),
    /** Bytes of weights on disk (and, for 4-bit formats, about the same in VRAM). */
    weightsBytes: z.number().int().positive(),
    layers: z.number().int().positive(),
    /** Attention heads; tensor parallel needs it to divide by the GPU count. */
    attentionHeads: z.number().int().positive(),
    kvHeads: z.number().int().positive(),
    headDim: z.number().int().positive(),
    /** The longest context the model supports without rope scaling (config.json max_position_embeddings). */
    maxContext: z.number().int().min(256),
    toolCallParser: z.enum(['hermes', 'llama3_json', 'mistral', 'pythonic']).nullable(),
    /** A chat template file the engine passes with --chat-template, or null for the model's own. */
    chatTemplate: z.string().min(1).nullable(),
    /**
     * Extra engine arguments beyond those cs-llm derives from the other fields (model, served name, context,
     * sequences, memory utilization, tool parser and chat template).
     */
    engineArgs: z.array(z.string()),
    /** Lowest CUDA compute capability the quantization kernels run on. */
    minComputeCapability: z.number().min(3).max(20),
    license: z.string().min(1),
    engines: z.array(engineKindSchema).min(1),
    gguf: ggufSchema.optional(),
    /** Where the figures come from. */
    source: z.string().min(1).optional(),
    notes: z.string().optional(),
  })
  .passthrough()
  .superRefine((entry, ctx) => {
    if (entry.engines.includes('vllm') && !entry.hfRepo) {
      ctx.addIssue({ code: 'custom', path: ['hfRepo'], message: 'a vllm model needs its Hugging Face repo (owner/name)' });
    }
    if (entry.engines.includes('cpu') && !entry.gguf) {
      ctx.addIssue({ code: 'custom', path: ['gguf'], message: 'a cpu model needs a gguf file ({"file": "..."})' });
    }
    if (entry.gguf?.sizeBytes !== undefined && entry.gguf.sizeBytes !== entry.weightsBytes) {
      ctx.addIssue({
        code: 'custom',
        path: ['gguf', 'sizeBytes'],
        message: `must equal weightsBytes (${entry.weightsBytes}): a GGUF file is the weights`,
      });
    }
    if (entry.kvHeads > entry.attentionHeads) {
      ctx.addIssue({ code: 'custom', path: ['kvHeads'], message: 'cannot exceed attentionHeads' });
    }
  });

export const catalogSchema = z
  .object({
    version: z.literal(1),
    models: z.array(modelEntrySchema),
  })
  .strict();

export type ModelEntry = z.infer<typeof modelEntrySchema>;
export type Catalog = z.infer<typeof catalogSchema>;
export type EngineKind = z.infer<typeof engineKindSchema>;
