/**
 * Byte sizes in the config: a plain number of bytes, or a string such as
 * `50M`, `100MiB`, `1.5G`.
 *
 * Every unit is a power of 1024, as in Synapse's `max_upload_size`
 * (`K` = 1024): `K`, `KB` and `KiB` all mean 1024 bytes, `M`/`MB`/`MiB`
 * 1024², `G`/`GB`/`GiB` 1024³, `T`/`TB`/`TiB` 1024⁴. `B` or no unit means
 * bytes. Units are case-insensitive; a space between number and unit is
 * allowed. Fractions are rounded down to whole bytes.
 */

/** What the config accepts for a size string (used by the config schema and its JSON Schema). */
export const BYTE_SIZE_PATTERN: RegExp = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]i?b?|b)?\s*$/i;

const UNIT_POWERS: Readonly<Record<string, number>> = { b: 0, k: 1, m: 2, g: 3, t: 4 };

/**
 * Parses a size string or passes a byte count through.
 * Returns `undefined` for anything that is not a size (the caller reports it).
 *
 * @example parseByteSize('50M') === 52_428_800
 */
export function parseByteSize(value: number | string): number | undefined {
  if (typeof value === 'number') {
    return Number.isSafeInteger(value) && value >= 0 ? value : undefined;
  }
  const match = BYTE_SIZE_PATTERN.exec(value);
  if (match === null) return undefined;
  const amount = Number(match[1]);
  const unit = (match[2] ?? 'b').toLowerCase();
  const power = UNIT_POWERS[unit.charAt(0)];
  if (power === undefined) return undefined;
  const bytes = Math.floor(amount * 1024 ** power);
  return Number.isSafeInteger(bytes) ? bytes : undefined;
}

/** Formats bytes for humans in log lines (`52428800` → `50 MiB`). */
export function formatByteSize(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'] as const;
  let value = bytes;
  let index = 0;
  while (value >= 1024 && index < units.length - 1 && value % 1024 === 0) {
    value /= 1024;
    index += 1;
  }
  return `${value} ${units[index]}`;
}
