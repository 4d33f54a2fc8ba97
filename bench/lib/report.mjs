/** Turns raw bench results into rows (with targets) and plain-text tables. */

const MIB = 1024 * 1024;
const GIB = 1024 * MIB;

/** The targets: ratio to the baseline for downloads, absolute growth for the upload. */
export const TARGETS = {
  smallFileRequestsRatio: 1.0,
  largeFileThroughputRatio: 0.9,
  uploadRssGrowthMiB: 100,
};

function fixed(value, digits) {
  return Number.isFinite(value) ? value.toFixed(digits) : 'n/a';
}

/**
 * @returns {{ rows: Array<{ measurement: string, unit: string, reference: number, baseline: number,
 *   ratio: number | null, target: string, pass: boolean | null }>, cpuRows: object[], text: string }}
 */
export function formatReport({ upload, downloads, uploadBytes }) {
  const rows = [];
  for (const row of downloads) {
    const small = row.metric === 'req/s';
    const value = (result) => (small ? result.requestsPerSec : result.bytesPerSec / MIB);
    const reference = value(row.reference);
    const baseline = value(row.baseline);
    const ratio = reference / baseline;
    const wanted = small ? TARGETS.smallFileRequestsRatio : TARGETS.largeFileThroughputRatio;
    rows.push({
      measurement: `GET ${row.file}, ${row.connections} connections`,
      unit: row.metric,
      reference,
      baseline,
      ratio,
      target: `≥ ${wanted.toFixed(1)}×`,
      pass: ratio >= wanted,
    });
  }
  const uploadLabel = `${Math.round(uploadBytes / MIB)} MiB`;
  rows.push({
    measurement: `POST ${uploadLabel} upload`,
    unit: 'MiB/s',
    reference: upload.reference.mibPerSec,
    baseline: upload.baseline.mibPerSec,
    ratio: upload.reference.mibPerSec / upload.baseline.mibPerSec,
    target: '—',
    pass: null,
  });
  rows.push({
    measurement: `${uploadLabel} upload: peak RSS growth`,
    unit: 'MiB',
    reference: upload.reference.peakGrowthBytes / MIB,
    baseline: upload.baseline.peakGrowthBytes / MIB,
    ratio: null,
    target: `< ${TARGETS.uploadRssGrowthMiB} MiB`,
    pass: upload.reference.peakGrowthBytes / MIB < TARGETS.uploadRssGrowthMiB,
  });

  const text = table(
    ['measurement', 'unit', 'hsmedia', 'baseline', 'ratio', 'target', 'result'],
    rows.map((row) => [
      row.measurement,
      row.unit,
      fixed(row.reference, row.unit === 'req/s' ? 0 : 1),
      fixed(row.baseline, row.unit === 'req/s' ? 0 : 1),
      row.ratio === null ? '—' : `${fixed(row.ratio, 2)}×`,
      row.target,
      row.pass === null ? '' : row.pass ? 'ok' : 'MISSED',
    ]),
  );

  // Server CPU per unit of work: steadier than throughput when the machine is shared.
  const cpuRows = [];
  for (const row of downloads) {
    const small = row.metric === 'req/s';
    const per = (result) =>
      result.cpuSeconds === null ? Number.NaN : small ? (result.cpuSeconds / result.requests) * 1e6 : result.cpuSeconds / (result.bytes / GIB);
    cpuRows.push({
      measurement: `GET ${row.file}, ${row.connections} connections`,
      unit: small ? 'CPU µs/request' : 'CPU s/GiB',
      reference: per(row.reference),
      baseline: per(row.baseline),
    });
  }
  const uploadCpu = (result) => (result.cpuSeconds === null ? Number.NaN : result.cpuSeconds / (uploadBytes / GIB));
  cpuRows.push({
    measurement: `POST ${uploadLabel} upload`,
    unit: 'CPU s/GiB',
    reference: uploadCpu(upload.reference),
    baseline: uploadCpu(upload.baseline),
  });
  const cpuText = table(
    ['server CPU', 'unit', 'hsmedia', 'baseline', 'ratio'],
    cpuRows.map((row) => [
      row.measurement,
      row.unit,
      fixed(row.reference, 2),
      fixed(row.baseline, 2),
      `${fixed(row.reference / row.baseline, 2)}×`,
    ]),
  );
  return { rows, cpuRows, text: `${text}\n\n${cpuText}` };
}

function table(header, cells) {
  const widths = header.map((title, column) => Math.max(title.length, ...cells.map((line) => line[column].length)));
  const line = (values) => `| ${values.map((value, column) => value.padEnd(widths[column])).join(' | ')} |`;
  return [line(header), `|${widths.map((width) => '-'.repeat(width + 2)).join('|')}|`, ...cells.map(line)].join('\n');
}
