/*
 * Tokens estimated from bytes, before an engine counted them: for TPM budgets (before sending) and for the
 * prompt of a stream whose engine reported no usage. About 4 characters per token for ASCII text, and about
 * one token per character of other scripts (3 bytes each in UTF-8 for CJK); erring high is the safe side.
 */

export function estimateTokensOfBytes(body: Buffer | null | undefined): number {
  if (!body) return 0;
  let ascii = 0;
  for (let i = 0; i < body.length; i++) if (body[i]! < 0x80) ascii++;
  return Math.ceil(ascii / 4 + (body.length - ascii) / 3);
}
