import type Docker from 'dockerode';

/** The HTTP status dockerode attaches to engine errors (404 no such image, 409 conflict, ...). */
export function engineStatus(err: unknown): number | undefined {
  return (err as { statusCode?: number }).statusCode;
}

/**
 * Pulls through dockerode. A failed pull rejects whether the engine says so up front (404 manifest
 * unknown, 500 registry down) or only as a `{"error": ...}` line in the progress stream.
 */
export async function pullImage(docker: Docker, ref: string): Promise<void> {
  const stream = await docker.pull(ref);
  await new Promise<void>((resolve, reject) => {
    let failure: Error | undefined;
    docker.modem.followProgress(
      stream,
      (err: Error | null) => {
        if (err) reject(err);
        else if (failure) reject(failure);
        else resolve();
      },
      (event: { error?: string; errorDetail?: { message?: string } }) => {
        if (event.error !== undefined && failure === undefined) failure = new Error(event.errorDetail?.message ?? event.error);
      },
    );
  });
}

/** Pulls only when the engine does not have the image yet. */
export async function ensureImage(docker: Docker, ref: string): Promise<void> {
  try {
    await docker.getImage(ref).inspect();
  } catch (err) {
    if (engineStatus(err) !== 404) throw err;
    await pullImage(docker, ref);
  }
}

/** Removes the local copy so that the next use is a real pull; an image already gone is fine. */
export async function removeLocalImage(docker: Docker, ref: string): Promise<void> {
  try {
    await docker.getImage(ref).remove({ force: true });
  } catch (err) {
    if (engineStatus(err) !== 404) throw err;
  }
}
