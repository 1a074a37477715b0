// Small pieces the pattern-based detectors share.

export function spans(re: RegExp, text: string, group = 0): Array<{ start: number; end: number }> {
  const out: Array<{ start: number; end: number }> = [];
  re.lastIndex = 0;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    if (m[0].length === 0) re.lastIndex++; // a pattern that matched nothing must still move on
    const value = m[group];
    if (value === undefined || value.length === 0) continue;
    const start = m.index + m[0].lastIndexOf(value);
    out.push({ start, end: start + value.length });
  }
  return out;
}

// Between a cue word and its value: spaces, colons, "是"/"为" (is), "号"/"号码" (number).
export const GAP = '[ \\t:：是为]{0,3}(?:号码|号|id|ID|no\\.?|No\\.?|number)?[ \\t:：是为.]{0,3}';
