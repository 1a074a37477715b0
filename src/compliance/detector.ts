// What a detector is: the shape every detector module (numbers, e-mail, extended, custom) shares, kept apart
// from detectors.ts, which builds the list, so that the modules do not import each other in a circle.

export interface Match {
  /** The placeholder label without brackets: EMAIL, PHONE, CN_ID, CARD, an extended type's, or a custom label. */
  label: string;
  /** What the detector took it for, finer than the label: mobile, landline, intl, id18, id15, card, email, ... */
  kind: string;
  start: number;
  end: number;
}

/** One message as the detectors read it: the original text and its width-folded copy (same offsets, fold.ts). */
export interface Scan {
  text: string;
  folded: string;
  /** How many ASCII digits the folded text holds, and its longest run of them: detectors' cheap first test. */
  digits: number;
  longestDigitRun: number;
}

export interface Detector {
  label: string;
  /** Cheap test first: false means the text certainly holds no match (most chat messages). */
  mayMatch(scan: Scan): boolean;
  find(scan: Scan): Array<{ start: number; end: number; kind?: string; label?: string }>;
}

/** A detector of an extended type: switchable in store.redaction, on or off by default (docs/compliance.md says why). */
export type Extended = Detector & { defaultOn: boolean };
