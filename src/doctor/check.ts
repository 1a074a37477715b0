// One doctor check's result: what was found, how to fix it, and whether its failure stops `cs-llm up`.

export type CheckStatus = 'ok' | 'warn' | 'fail';

export interface Check {
  name: CheckName;
  status: CheckStatus;
  detail: string;
  fix: string | null;
  neededByUp: boolean;
}

export const CHECK_NAMES = [
  'node',
  'docker',
  'docker-api',
  'nvidia-runtime',
  'gpu',
  'disk',
  'engine-port',
  'daemon-port',
  'store',
  'state-files',
] as const;
export type CheckName = (typeof CHECK_NAMES)[number];
