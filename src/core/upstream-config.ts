/*
 * The config of one upstream engine (daemon.upstreams[], docs/routing-and-tools.md) and what it costs
 * (docs/cost-and-capacity.md). Apart from config.ts so that the money fields have room and one home.
 */

import type { z as Zod } from 'zod';

/**
 * The schemas, built with the zod it is given: config-schema.ts loads zod only when the hand-written check
 * (config-check.ts) refuses a config, to name what is wrong (#21: zod is 13 MiB of a daemon's RSS).
 */
export function upstreamSchemas(z: typeof Zod) {
  const amount = z.number().finite().min(0, 'must be 0 or more');

  /** ISO 4217 codes the runtime knows (Intl), so a typo such as "RMB" is refused instead of counted apart. */
  const CURRENCIES = new Set(Intl.supportedValuesOf('currency'));

  /**
   * What an upstream costs: per token (input, output, cachedInput per `per` tokens), and/or per time for a local
   * engine: the power its GPUs draw (electricityPerKWh, from the GPU sampler) or a fixed monthly amount spread
   * over the hours. All in one currency.
   */
  const priceSchema = z
    .object({
      /** Price of `per` prompt tokens. */
      input: amount.optional(),
      /** Price of `per` completion tokens. */
      output: amount.optional(),
      /** Price of `per` prompt tokens the provider served from its cache; unset: the input price. */
      cachedInput: amount.optional(),
      per: z.enum(['1K', '1M'], { message: 'must be "1K" or "1M": how many tokens the prices are for' }).default('1M'),
      /** Price of a kWh: the cost of the power the GPUs in `gpus` draw while the daemon runs. */
      electricityPerKWh: amount.optional(),
      /** A fixed cost per month (a lease, the box's depreciation), spread evenly over the hours (730 a month). */
      monthly: amount.optional(),
      /** The GPUs (nvidia-smi indexes) whose power is this upstream's; unset: every GPU of this machine. */
      gpus: z.array(z.number().int().min(0)).min(1).optional(),
      currency: z
        .string()
        .refine((c) => CURRENCIES.has(c), {
          message: 'must be an ISO 4217 currency code in capitals, e.g. "USD", "EUR" or "CNY" (the yuan; not "RMB")',
        })
        .default('USD'),
    })
    .strict()
    .refine((p) => [p.input, p.output, p.cachedInput, p.electricityPerKWh, p.monthly].some((v) => v !== undefined), {
      message: 'give a price: "input" and "output" per token, "electricityPerKWh" or "monthly" for a local engine',
    })
    .refine((p) => (p.input === undefined) === (p.output === undefined), {
      message: 'token prices come in pairs: give both "input" and "output" (0 for one that is free)',
    })
    .refine((p) => p.cachedInput === undefined || p.input !== undefined, {
      message: '"cachedInput" needs "input" and "output" too',
    })
    .refine((p) => p.gpus === undefined || p.electricityPerKWh !== undefined, {
      message: '"gpus" says whose power "electricityPerKWh" prices: set electricityPerKWh, or remove gpus',
    });

  const perWindow = z.number().int().min(1, 'must be 1 or more (leave it out for no limit)');

  /**
   * The rate limits the provider of an upstream sets; the router keeps under them by choosing another upstream
   * (docs/cost-and-capacity.md). The window is a minute, as providers count; the limits count per the window, so a
   * shorter one budgets a local engine per second (from its capacity as `cs-llm bench` measured it), or
   * compresses time in a test.
   */
  const limitsSchema = z
    .object({
      rpm: perWindow.optional(),
      tpm: perWindow.optional(),
      windowMs: z.number().int().min(100).default(60_000),
    })
    .strict()
    .refine((l) => l.rpm !== undefined || l.tpm !== undefined, { message: 'give "rpm", "tpm" or both' });

  /** One OpenAI-compatible engine the daemon may send requests to (see docs/routing-and-tools.md). */
  const upstreamSchema = z
    .object({
      name: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, 'letters, digits, ".", "_" or "-" (1-64)'),
      url: z.string().url(),
      /** Environment variable holding the key sent as Authorization: Bearer (never the key itself in the file). */
      apiKeyEnv: z.string().min(1).optional(),
      /** The client's model name -> this upstream's; names not listed pass unchanged. */
      models: z.record(z.string(), z.string()).default({}),
      weight: z.number().min(0).default(1),
      /** Unset: local only when the URL's host is a loopback address; anything else off this machine is remote. */
      kind: z.enum(['local', 'remote']).optional(),
      /** Personal data leaves as placeholders (<PHONE_1>), put back in the reply the client gets (docs/compliance.md). */
      mask: z.boolean().default(false),
      /** What it costs (docs/cost-and-capacity.md); unset: nothing is counted as money for it. */
      price: priceSchema.optional(),
      /** Its provider's rate limits; unset: none. */
      limits: limitsSchema.optional(),
    })
    .strict();

  return { priceSchema, limitsSchema, upstreamSchema };
}

type Schemas = ReturnType<typeof upstreamSchemas>;
export type UpstreamConfig = Zod.infer<Schemas['upstreamSchema']>;
export type PriceConfig = Zod.infer<Schemas['priceSchema']>;
