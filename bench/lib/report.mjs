/** Turns raw bench results into rows (with targets) and a plain-text table. */

const MIB = 1024 * 1024;

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
 *   ratio: number | null, target: string, pass: boolean | null }>, text: string }}
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

  const header = ['measurement', 'unit', 'hsmedia', 'baseline', 'ratio', 'target', 'result'];
  const cells = rows.map((row) => [
    row.measurement,
    row.unit,
    fixed(row.reference, row.unit === 'req/s' ? 0 : 1),
    fixed(row.baseline, row.unit === 'req/s' ? 0 : 1),
    row.ratio === null ? '—' : `${fixed(row.ratio, 2)}×`,
    row.target,
    row.pass === null ? '' : row.pass ? 'ok' : 'MISSED',
  ]);
  const widths = header.map((title, column) => Math.max(title.length, ...cells.map((line) => line[column].length)));
  const line = (values) => `| ${values.map((value, column) => value.padEnd(widths[column])).join(' | ')} |`;
  const text = [line(header), `|${widths.map((width) => '-'.repeat(width + 2)).join('|')}|`, ...cells.map(line)].join('\n');
  return { rows, text };
}
