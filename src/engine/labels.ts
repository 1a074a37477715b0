// The labels that mark a container (or network) as cs-llm's: our containers are found by label, never by
// name guessing. The config hash label is how `up` tells whether a running engine can be reused.

export const LABEL = {
  managed: 'cs-llm.managed',
  instance: 'cs-llm.instance',
  engine: 'cs-llm.engine',
  model: 'cs-llm.model',
  servedName: 'cs-llm.served-name',
  configHash: 'cs-llm.config-hash',
  port: 'cs-llm.port',
  gpus: 'cs-llm.gpus',
  /** Which engine of a placement this is (0, 1, ...): replicas are one engine per GPU. */
  replica: 'cs-llm.replica',
  /** A fingerprint of the engine's API key (engine-key.ts), never the key. */
  keyId: 'cs-llm.key-id',
} as const;
