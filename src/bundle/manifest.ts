/*
 * The manifest of an offline bundle, and the rules every member path must follow. Pure: no files, no
 * Docker. The manifest is the bundle's first member, manifest.json; it names every other member with its
 * size and sha256, so a bundle can be verified completely before anything on the host changes.
 */

import { posix } from 'node:path';
import { z } from 'zod';
import { hfRepoFolderName } from '../engine/model-files.js';

export const BUNDLE_FORMAT = 'cs-llm-bundle';
export const BUNDLE_FORMAT_VERSION = 1;
export const MANIFEST_MEMBER = 'manifest.json';
/** Model files of the Hugging Face cache sit under this prefix, in the cache's own layout. */
export const HF_CACHE_PREFIX = 'models/hf-cache/';
/** The GGUF file of a cpu-engine model sits under this prefix. */
export const GGUF_PREFIX = 'models/gguf/';

const sha256 = z.string().regex(/^[0-9a-f]{64}$/, '64 lowercase hex digits');

export const fileMemberSchema = z
  .object({
    path: z.string().min(1),
    type: z.literal('file'),
    size: z.number().int().min(0),
    sha256,
    role: z.enum(['image', 'model-file']),
  })
  .strict();

export const symlinkMemberSchema = z
  .object({
    path: z.string().min(1),
    type: z.literal('symlink'),
    target: z.string().min(1),
    role: z.literal('model-file'),
  })
  .strict();

export const memberSchema = z.discriminatedUnion('type', [fileMemberSchema, symlinkMemberSchema]);

export const manifestSchema = z
  .object({
    format: z.literal(BUNDLE_FORMAT),
    formatVersion: z.literal(BUNDLE_FORMAT_VERSION),
    csLlmVersion: z.string().min(1),
    createdAt: z.string().min(1),
    engine: z.enum(['vllm', 'cpu', 'sim']),
    image: z
      .object({
        /** References saved by name, so a load restores these tags. */
        refs: z.array(z.string().min(1)).min(1),
        /** The image id (sha256:... of its config): the same after a load. */
        id: z.string().regex(/^sha256:[0-9a-f]{64}$/),
        member: z.string().min(1),
        compression: z.enum(['none', 'gzip']),
        /** What `docker image inspect` said the image occupies, for information. */
        sizeBytes: z.number().int().min(0).optional(),
      })
      .strict(),
    model: z
      .object({
        id: z.string().min(1),
        /** The catalog entry as the creating host had it (validated against the catalog schema on load). */
        entry: z.record(z.string(), z.unknown()),
        /** Where the model's files go: none (simulator), the Hugging Face cache (vllm), the GGUF folder (cpu). */
        store: z.enum(['none', 'hf-cache', 'gguf']),
        repo: z.string().optional(),
        revision: z.string().optional(),
        /** For the gguf store: the file name. */
        file: z.string().optional(),
      })
      .strict(),
    members: z.array(memberSchema),
  })
  .strict()
  .superRefine((manifest, ctx) => {
    const seen = new Set<string>();
    const links = new Set(manifest.members.filter((m) => m.type === 'symlink').map((m) => m.path));
    for (const [i, member] of manifest.members.entries()) {
      if (seen.has(member.path)) ctx.addIssue({ code: 'custom', path: ['members', i, 'path'], message: `duplicate member ${member.path}` });
      seen.add(member.path);
      const problem = memberPathProblem(manifest, member) ?? linkProblem(member, links);
      if (problem) ctx.addIssue({ code: 'custom', path: ['members', i, 'path'], message: problem });
    }
    if (!manifest.members.some((m) => m.path === manifest.image.member && m.role === 'image')) {
      ctx.addIssue({
        code: 'custom',
        path: ['image', 'member'],
        message: `the image member ${manifest.image.member} is not among the members`,
      });
    }
    if (manifest.model.store === 'hf-cache' && !manifest.model.repo) {
      ctx.addIssue({ code: 'custom', path: ['model', 'repo'], message: 'a bundle with Hugging Face cache files names the repo' });
    }
    if (manifest.model.store === 'gguf' && !manifest.model.file) {
      ctx.addIssue({ code: 'custom', path: ['model', 'file'], message: 'a bundle with a GGUF file names it' });
    }
  });

export type BundleManifest = z.infer<typeof manifestSchema>;
export type BundleMember = z.infer<typeof memberSchema>;
export type FileMember = z.infer<typeof fileMemberSchema>;

function isCleanRelative(path: string): boolean {
  if (path.startsWith('/') || path.includes('\\') || path.includes('\0')) return false;
  return path.split('/').every((part) => part !== '' && part !== '.' && part !== '..');
}

/**
 * Why a member's path (or a link's target) is not allowed, or null. A bundle may only write inside the
 * folder of its own model in the cache, so a crafted bundle cannot reach anywhere else on the host.
 */
export function memberPathProblem(manifest: Pick<BundleManifest, 'model' | 'image'>, member: BundleMember): string | null {
  if (!isCleanRelative(member.path)) return `member path ${JSON.stringify(member.path)} is not a clean relative path`;
  if (member.role === 'image') {
    return member.path === manifest.image.member && !member.path.includes('/')
      ? null
      : `image member ${member.path} is not the manifest's image member`;
  }
  if (manifest.model.store === 'gguf') {
    const file = manifest.model.file ?? '';
    return member.type === 'file' && isCleanRelative(file) && !file.includes('/') && member.path === `${GGUF_PREFIX}${file}`
      ? null
      : `model file ${member.path} is not the bundle's GGUF file ${GGUF_PREFIX}${file}`;
  }
  if (manifest.model.store !== 'hf-cache' || !manifest.model.repo) return `model file ${member.path} in a bundle whose model has no files`;
  const repoPrefix = `${HF_CACHE_PREFIX}hub/${hfRepoFolderName(manifest.model.repo)}/`;
  if (!member.path.startsWith(repoPrefix)) return `model file ${member.path} is outside ${repoPrefix}`;
  if (member.type === 'symlink') {
    if (member.target.startsWith('/')) return `link ${member.path} has an absolute target`;
    const resolved = posix.normalize(posix.join(posix.dirname(member.path), member.target));
    if (!resolved.startsWith(repoPrefix)) return `link ${member.path} points outside its model folder (${member.target})`;
  }
  return null;
}

/**
 * Why a member would be created, or a link resolved, through one of the bundle's own links, or null. The
 * path rules above read a link's target as text, but on disk a link that is already there is followed: a
 * link "under" another link, or a target that walks through one and then "..", lands somewhere the text
 * does not say (issue 13.1). Nothing is ever created through a link, so both are refused.
 */
export function linkProblem(member: BundleMember, links: ReadonlySet<string>): string | null {
  const parts = member.path.split('/');
  for (let n = 1; n < parts.length; n++) {
    const above = parts.slice(0, n).join('/');
    if (links.has(above)) return `member ${member.path} lies under the link ${above}: nothing is created through a link`;
  }
  if (member.type !== 'symlink') return null;
  const walked = parts.slice(0, -1);
  const steps = member.target.split('/').filter((p) => p !== '' && p !== '.');
  for (const [i, step] of steps.entries()) {
    if (step === '..') walked.pop();
    else walked.push(step);
    const here = walked.join('/');
    if (step !== '..' && i < steps.length - 1 && links.has(here)) {
      return `link ${member.path} has a target that passes through the link ${here} (${member.target}): nothing is resolved through a link`;
    }
  }
  return null;
}

/** Cache-relative path (hub/models--X/...) <-> member path. */
export function hfMemberPath(cacheRel: string): string {
  return `${HF_CACHE_PREFIX}${cacheRel}`;
}

export function cacheRelOf(memberPath: string): string {
  return memberPath.slice(HF_CACHE_PREFIX.length);
}

/** First zod issue as one line, for errors a person reads. */
export function describeManifestIssue(error: z.ZodError): string {
  const issue = error.issues[0]!;
  const where = issue.path.join('.') || '(top level)';
  const more = error.issues.length > 1 ? ` (and ${error.issues.length - 1} more problem(s))` : '';
  return `field "${where}": ${issue.message}${more}`;
}

export function fileMembers(manifest: BundleManifest): FileMember[] {
  return manifest.members.filter((m): m is FileMember => m.type === 'file');
}
