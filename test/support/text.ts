/** Text compared the way transcripts are: case, punctuation and spacing aside. */
export const normalise = (text: string): string =>
  text
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s]/gu, '')
    .replace(/\s+/g, ' ')
    .trim();

/** Word error rate of `hypothesis` against `reference`, both normalised: word edits / reference words. */
export function wordErrorRate(reference: string, hypothesis: string): number {
  const ref = normalise(reference).split(' ').filter(Boolean);
  const hyp = normalise(hypothesis).split(' ').filter(Boolean);
  let row = Array.from({ length: hyp.length + 1 }, (_, j) => j);
  for (let i = 1; i <= ref.length; i++) {
    const next = [i];
    for (let j = 1; j <= hyp.length; j++) {
      next.push(Math.min(row[j]! + 1, next[j - 1]! + 1, row[j - 1]! + (ref[i - 1] === hyp[j - 1] ? 0 : 1)));
    }
    row = next;
  }
  return row[hyp.length]! / Math.max(1, ref.length);
}
