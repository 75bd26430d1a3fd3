/** The pictures: PCA axes against a known covariance, escaping, and the shape of the SVG. */
import { confusionSvg, embeddingMapSvg, principalAxes } from '../lib/eval/plots';
import { escapeXml } from '../lib/util/xml';
import { evaluate } from '../lib/eval/report';
import { Rng } from './helpers/random';

test('principal axes recover the directions of largest variance', () => {
  const d = 9;
  const n = 400;
  const rng = new Rng(5);
  // Two orthonormal directions u, v with spreads 5 and 2, plus small noise.
  const u = new Float64Array(d).map((_, k) => (k % 3 === 0 ? 1 : 0));
  const v = new Float64Array(d).map((_, k) => (k === 1 ? 1 : k === 2 ? -1 : 0));
  const nu = Math.hypot(...u);
  const nv = Math.hypot(...v);
  const x = new Float32Array(n * d);
  for (let i = 0; i < n; ++i) {
    const a = 5 * rng.normal();
    const b = 2 * rng.normal();
    for (let k = 0; k < d; ++k) x[i * d + k] = 3 + (a * u[k]) / nu + (b * v[k]) / nv + 0.05 * rng.normal();
  }
  const { mean, axes } = principalAxes(x, n, d);
  const cos = (p: Float64Array, q: Float64Array, nq: number) => Math.abs(p.reduce((s, pk, k) => s + (pk * q[k]) / nq, 0));
  expect(cos(axes[0], u, nu)).toBeGreaterThan(0.999);
  expect(cos(axes[1], v, nv)).toBeGreaterThan(0.999);
  expect(Math.abs(axes[0].reduce((s, a, k) => s + a * axes[1][k], 0))).toBeLessThan(1e-6);
  mean.forEach((m) => expect(Math.abs(m - 3)).toBeLessThan(0.6));
});

test('SVGs are well-formed enough and escape class names', () => {
  expect(escapeXml(`<a&"b'>`)).toBe('&lt;a&amp;&quot;b&apos;&gt;');
  const classes = ['<joy>', 'fear & co'];
  const svg = confusionSvg(evaluate(classes, [0, 1, 1], [[0], [1], [0]]), 'T <1>');
  expect(svg).toContain('&lt;joy&gt;');
  expect(svg).toContain('fear &amp; co');
  expect(svg).toContain('T &lt;1&gt;');
  expect(svg).not.toMatch(/<joy>/);
  expect(svg.match(/<rect /g)!.length).toBe(1 + 4);
  const rng = new Rng(2);
  const emb = rng.floats(5 * 4);
  const map = embeddingMapSvg(emb, [0, 1, 0, 1, 1], rng.floats(2 * 4), classes, 4);
  expect(map.match(/<circle /g)!.length).toBe(5 + 2); // samples + legend
  expect(map).not.toMatch(/NaN/);
});
