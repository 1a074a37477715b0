/*
 * Whether the host's NVIDIA driver is new enough for the CUDA in the pinned vLLM image, asked before the image
 * (over 10 GB) is pulled. A driver branch supports the CUDA it shipped with and older: R570 ships CUDA 12.8. An
 * older driver makes the engine fail at start (the toolkit's "unsatisfied condition: cuda>=12.8", PyTorch's
 * "driver too old", or error 804; diagnose.ts), except on datacenter GPUs, which can run a newer CUDA through
 * forward compatibility. So it is a warning, never a refusal, and only for the pinned image: another --image
 * may be built for an older CUDA.
 */

import { VLLM_IMAGE, VLLM_IMAGE_CUDA, VLLM_IMAGE_MIN_DRIVER } from './kinds.js';

/** The warning for this driver version (nvidia-smi's "550.120"), or null when it is new enough or unknown. */
export function oldDriverWarning(driverVersion: string | null, image: string = VLLM_IMAGE): string | null {
  if (image !== VLLM_IMAGE || !driverVersion) return null;
  const branch = Number(driverVersion.split('.')[0]);
  if (!Number.isInteger(branch) || branch >= Number(VLLM_IMAGE_MIN_DRIVER)) return null;
  return `driver ${driverVersion} is older than R${VLLM_IMAGE_MIN_DRIVER}, which ${VLLM_IMAGE} (CUDA ${VLLM_IMAGE_CUDA}) needs on GeForce and RTX cards (datacenter GPUs may run it through CUDA forward compatibility)`;
}

/** What to do about it, as a clause (the plan's note goes on after "if the engine does not start, "). */
const OLD_DRIVER_NEXT = `update the NVIDIA driver to R${VLLM_IMAGE_MIN_DRIVER} or newer, or pass --image with a vLLM image built for the CUDA your driver supports (the top line of nvidia-smi)`;

/** The plan's note before the pull, or null. */
export function oldDriverNote(driverVersion: string | null, image: string): string | null {
  const warning = oldDriverWarning(driverVersion, image);
  return warning ? `${warning}: if the engine does not start, ${OLD_DRIVER_NEXT}` : null;
}

/** The doctor's fix. */
export const OLD_DRIVER_FIX = `Before cs-llm up pulls the engine image, ${OLD_DRIVER_NEXT}.`;
