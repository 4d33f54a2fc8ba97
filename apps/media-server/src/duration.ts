/** A duration: whole milliseconds, or a number with a unit (ms, s, m, h, d, w), e.g. "90s", "12h", "30d". */
export const DURATION_PATTERN: RegExp = /^\s*(\d{1,15})\s*(ms|s|m|h|d|w)\s*$/i;

const UNIT_MS: Readonly<Record<string, number>> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/**
 * Milliseconds of a duration (see {@link DURATION_PATTERN}); undefined for
 * anything else, a negative or fractional number, or more than 2^53 ms.
 */
export function parseDuration(value: number | string): number | undefined {
  if (typeof value === 'number') return Number.isSafeInteger(value) && value >= 0 ? value : undefined;
  const match = DURATION_PATTERN.exec(value);
  if (match === null) return undefined;
  const ms = Number(match[1]) * UNIT_MS[match[2]!.toLowerCase()]!;
  return Number.isSafeInteger(ms) ? ms : undefined;
}
