/** Turns raw bench results into rows (with issue 22's targets) and a plain-text table. */

const MIB = 1024 * 1024;
const GIB = 1024 * MIB;

/** Issue 22's targets: against the plain pipe in the same run, medians of the rounds. */
export const TARGETS = {
  throughputRatio: 0.95,
  cpuPerGiBRatio: 1.1,
  /** Federation of the 32 MiB file against the client download of it, at 2 connections. */
  federationToClientRatio: 0.95,
};

function fixed(value, digits) {
  return Number.isFinite(value) ? value.toFixed(digits) : 'n/a';
}

function median(values) {
  const sorted = values.filter(Number.isFinite).sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

/** Per-round figures of one server: throughput (MiB/s or req/s) and CPU s/GiB (µs/request for small files). */
function figures(rounds, small) {
  const rate = median(rounds.map((round) => (small ? round.requestsPerSec : round.bytesPerSec / MIB)));
  const cpu = median(
    rounds.map((round) => {
      if (round.cpuSeconds === null) return Number.NaN;
      return small ? (round.cpuSeconds / round.requests) * 1e6 : round.cpuSeconds / ((round.bytesPerSec * round.seconds) / GIB);
    }),
  );
  return { rate, cpu };
}

/**
 * @returns {{ rows: object[], text: string }} one row per case: medians of both servers, the two
 *   ratios, and `pass` (null when the case has no target).
 */
export function formatReport({ downloads, upload }) {
  const rows = [];
  const all = upload === null ? downloads : [...downloads, upload];
  for (const result of all) {
    const small = result.metric === 'req/s';
    const reference = figures(result.reference, small);
    const baseline = figures(result.baseline, small);
    const row = {
      measurement: result.label,
      connections: result.connections,
      unit: result.metric,
      cpuUnit: small ? 'CPU µs/req' : 'CPU s/GiB',
      reference: reference.rate,
      baseline: baseline.rate,
      ratio: reference.rate / baseline.rate,
      referenceCpu: reference.cpu,
      baselineCpu: baseline.cpu,
      cpuRatio: reference.cpu / baseline.cpu,
      toClient: null,
    };
    row.pass = row.ratio >= TARGETS.throughputRatio && !(row.cpuRatio > TARGETS.cpuPerGiBRatio);
    rows.push(row);
  }
  // Federation against the client download of the same file, same connections, same run.
  for (const row of rows) {
    if (!row.measurement.startsWith('federation GET ')) continue;
    const client = rows.find((other) => other.measurement === row.measurement.slice('federation '.length) && other.connections === row.connections);
    if (client === undefined) continue;
    row.toClient = row.reference / client.reference;
    if (row.connections === 2 && row.measurement.endsWith(' 32 MiB')) row.pass &&= row.toClient >= TARGETS.federationToClientRatio;
  }

  const text = table(
    ['case', 'conns', 'unit', 'hsmedia', 'plain pipe', 'ratio', 'CPU unit', 'hsmedia', 'plain pipe', 'ratio', 'fed/client', 'result'],
    rows.map((row) => [
      row.measurement,
      String(row.connections),
      row.unit,
      fixed(row.reference, row.unit === 'req/s' ? 0 : 1),
      fixed(row.baseline, row.unit === 'req/s' ? 0 : 1),
      `${fixed(row.ratio, 2)}×`,
      row.cpuUnit,
      fixed(row.referenceCpu, 3),
      fixed(row.baselineCpu, 3),
      `${fixed(row.cpuRatio, 2)}×`,
      row.toClient === null ? '' : `${fixed(row.toClient, 2)}×`,
      row.pass ? 'ok' : 'MISSED',
    ]),
  );
  const uploadMemory =
    upload === null
      ? ''
      : `\nupload peak RSS growth (largest of the rounds): hsmedia ${fixed(Math.max(...upload.reference.map((round) => round.peakGrowthBytes)) / MIB, 1)} MiB, ` +
        `plain pipe ${fixed(Math.max(...upload.baseline.map((round) => round.peakGrowthBytes)) / MIB, 1)} MiB`;
  const legend =
    `\ntargets: ratio ≥ ${TARGETS.throughputRatio}× and CPU ratio ≤ ${TARGETS.cpuPerGiBRatio}× the plain pipe; ` +
    `federation 32 MiB at 2 connections ≥ ${TARGETS.federationToClientRatio}× the client download (fed/client). Medians of the rounds.`;
  return { rows, text: `${text}${uploadMemory}${legend}` };
}

function table(header, cells) {
  const widths = header.map((title, column) => Math.max(title.length, ...cells.map((line) => line[column].length)));
  const line = (values) => `| ${values.map((value, column) => value.padEnd(widths[column])).join(' | ')} |`;
  return [line(header), `|${widths.map((width) => '-'.repeat(width + 2)).join('|')}|`, ...cells.map(line)].join('\n');
}
