/**
 * Pictures for people who would rather look than read: the confusion matrix
 * and a 2-D map (PCA) of projected embeddings with the label points. Plain
 * SVG strings, no dependencies; every text is escaped.
 */
import { escapeXml } from '../util/xml';
import { EvalReport } from './report';

const PALETTE = ['#4e79a7', '#f28e2b', '#e15759', '#76b7b2', '#59a14f', '#edc948', '#b07aa1', '#ff9da7', '#9c755f', '#bab0ac'];

function classColor(c: number): string {
  if (c < PALETTE.length) return PALETTE[c];
  return `hsl(${(c * 137.508) % 360}, 55%, 50%)`;
}

/** Rows are true classes, columns predictions; cells shaded by the row's fraction, with counts. */
export function confusionSvg(r: EvalReport, title = 'Confusion matrix'): string {
  const C = r.classes.length;
  const cell = C > 12 ? 26 : 48;
  const labelW = Math.min(160, 12 + 7 * Math.max(...r.classes.map((c) => c.length)));
  const top = 76 + labelW;
  const left = labelW + 20;
  const w = Math.max(left + C * cell + 20, left + 9 * title.length + 20, 360);
  const h = top + C * cell + 40;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" font-family="sans-serif" font-size="12">`,
    `<rect width="${w}" height="${h}" fill="white"/>`,
    `<text x="${left}" y="22" font-size="15" font-weight="bold">${escapeXml(title)}</text>`,
    `<text x="${left}" y="42">top-1 ${(100 * r.top1).toFixed(2)}%, macro-F1 ${(100 * r.macroF1).toFixed(2)}%, n = ${r.n}</text>`,
    `<text x="${left}" y="58" fill="#555">rows: true class; columns: predicted</text>`,
  ];
  r.confusion.forEach((row, i) => {
    const total = row.reduce((a, b) => a + b, 0);
    row.forEach((count, j) => {
      const f = total ? count / total : 0;
      const x = left + j * cell;
      const y = top + i * cell;
      const fill = i === j ? `rgba(46, 125, 50, ${0.1 + 0.9 * f})` : `rgba(198, 40, 40, ${f === 0 ? 0.03 : 0.1 + 0.9 * f})`;
      out.push(`<rect x="${x}" y="${y}" width="${cell}" height="${cell}" fill="${fill}" stroke="#ddd"/>`);
      if (cell >= 40 || count > 0) {
        out.push(`<text x="${x + cell / 2}" y="${y + cell / 2 + 4}" text-anchor="middle" fill="${f > 0.55 ? 'white' : 'black'}">${count}</text>`);
      }
    });
    out.push(`<text x="${left - 6}" y="${top + i * cell + cell / 2 + 4}" text-anchor="end">${escapeXml(r.classes[i])}</text>`);
  });
  r.classes.forEach((c, j) => {
    const x = left + j * cell + cell / 2 + 4;
    out.push(`<text transform="translate(${x} ${top - 6}) rotate(-60)">${escapeXml(c)}</text>`);
  });
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}

/**
 * The first two principal components of the rows of `x` (n x d), by power
 * iteration with deflation in float64 (d can be a few thousand; no d x d
 * matrix is formed). Returns the mean and the two unit directions.
 */
export function principalAxes(x: Float32Array, n: number, d: number): { mean: Float64Array; axes: [Float64Array, Float64Array] } {
  const mean = new Float64Array(d);
  for (let i = 0; i < n; ++i) for (let k = 0; k < d; ++k) mean[k] += x[i * d + k] / n;
  const found: Float64Array[] = [];
  for (let a = 0; a < 2; ++a) {
    let v = new Float64Array(d).map((_, k) => Math.sin(k * 12.9898 + a * 78.233) + 0.01);
    for (let it = 0; it < 200; ++it) {
      // w = Xc^T (Xc v), with earlier axes projected out.
      const w = new Float64Array(d);
      for (let i = 0; i < n; ++i) {
        let s = 0;
        for (let k = 0; k < d; ++k) s += (x[i * d + k] - mean[k]) * v[k];
        for (let k = 0; k < d; ++k) w[k] += s * (x[i * d + k] - mean[k]);
      }
      for (const u of found) {
        let p = 0;
        for (let k = 0; k < d; ++k) p += w[k] * u[k];
        for (let k = 0; k < d; ++k) w[k] -= p * u[k];
      }
      let norm = 0;
      for (let k = 0; k < d; ++k) norm += w[k] * w[k];
      norm = Math.sqrt(norm);
      if (norm === 0) break;
      let change = 0;
      for (let k = 0; k < d; ++k) {
        const nv = w[k] / norm;
        change += Math.abs(nv - v[k]);
        w[k] = nv;
      }
      v = w;
      if (change < 1e-9 * d) break;
    }
    found.push(v);
  }
  return { mean, axes: [found[0], found[1]] };
}

/**
 * A scatter of unit-normalised embeddings (n x d, class y) and the label
 * points (C x d), on the first two principal components of the embeddings.
 */
export function embeddingMapSvg(
  emb: Float32Array,
  y: ArrayLike<number>,
  labels: Float32Array,
  names: readonly string[],
  d: number,
  title = 'Projected embeddings and label points (PCA)',
): string {
  const n = y.length;
  const unit = new Float32Array(emb.length);
  for (let i = 0; i < n; ++i) {
    let s = 0;
    for (let k = 0; k < d; ++k) s += emb[i * d + k] ** 2;
    const inv = 1 / (Math.sqrt(s) || 1);
    for (let k = 0; k < d; ++k) unit[i * d + k] = emb[i * d + k] * inv;
  }
  const { mean, axes } = principalAxes(unit, n, d);
  const project = (src: Float32Array, i: number): [number, number] => {
    let a = 0;
    let b = 0;
    for (let k = 0; k < d; ++k) {
      const c = src[i * d + k] - mean[k];
      a += c * axes[0][k];
      b += c * axes[1][k];
    }
    return [a, b];
  };
  const pts = Array.from({ length: n }, (_, i) => project(unit, i));
  const lab = names.map((_, c) => project(labels, c));
  const all = [...pts, ...lab];
  const [x0, x1] = [Math.min(...all.map((p) => p[0])), Math.max(...all.map((p) => p[0]))];
  const [y0, y1] = [Math.min(...all.map((p) => p[1])), Math.max(...all.map((p) => p[1]))];
  const W = 640;
  const H = 560;
  const pad = 40;
  const legendW = 150;
  const sx = (v: number) => pad + ((v - x0) / (x1 - x0 || 1)) * (W - 2 * pad - legendW);
  const sy = (v: number) => H - pad - ((v - y0) / (y1 - y0 || 1)) * (H - 2 * pad - 30);
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${pad}" y="24" font-size="15" font-weight="bold">${escapeXml(title)}</text>`,
  ];
  pts.forEach(([a, b], i) => {
    out.push(`<circle cx="${sx(a).toFixed(1)}" cy="${sy(b).toFixed(1)}" r="3" fill="${classColor(y[i])}" fill-opacity="0.55"/>`);
  });
  lab.forEach(([a, b], c) => {
    const X = sx(a);
    const Y = sy(b);
    out.push(
      `<path d="M${(X - 7).toFixed(1)} ${(Y - 7).toFixed(1)} L${(X + 7).toFixed(1)} ${(Y + 7).toFixed(1)} M${(X + 7).toFixed(1)} ${(Y - 7).toFixed(1)} L${(X - 7).toFixed(1)} ${(Y + 7).toFixed(1)}" stroke="${classColor(c)}" stroke-width="4"/>`,
    );
    out.push(`<text x="${(X + 9).toFixed(1)}" y="${(Y - 6).toFixed(1)}" font-weight="bold">${escapeXml(names[c])}</text>`);
  });
  names.forEach((name, c) => {
    const Y = 50 + c * 18;
    out.push(`<circle cx="${W - legendW + 10}" cy="${Y - 4}" r="5" fill="${classColor(c)}"/>`);
    out.push(`<text x="${W - legendW + 20}" y="${Y}">${escapeXml(name)}</text>`);
  });
  out.push(`<text x="${W - legendW}" y="${50 + names.length * 18 + 10}" fill="#555">dots: samples</text>`);
  out.push(`<text x="${W - legendW}" y="${50 + names.length * 18 + 26}" fill="#555">crosses: labels</text>`);
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
