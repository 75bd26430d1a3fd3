/**
 * The image path as a user runs it: `tinyemo features` over a folder of
 * images with a (small, random) CLIP tower, `train` on those features, and
 * `classify` on the images themselves — the bundle remembers the tower.
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { readFeatureVector } from '../lib/data/features';
import { readImage } from '../lib/io/image';
import { ClipVision } from '../lib/models/vision/clip_vision';
import { preprocess, preprocessForFolder } from '../lib/models/vision/preprocess';
import { ImageClassifier } from '../lib/models/projector/image_classifier';
import { LabelSpace } from '../lib/models/projector/label_space';
import { MetricClassifier } from '../lib/models/projector/classifier';
import { Projector } from '../lib/models/projector/projector';
import { writeSafetensors } from '../lib/io/safetensors';
import { repoDir } from '../lib/hub/cache';
import { Tensor } from '../lib/tensor';
import { Rng } from './helpers/random';
import { tokenizerFixture } from './helpers/tokenizers';

const bin = path.join(__dirname, '..', 'bin', 'tinyemo.js');
const IMG = path.join(__dirname, 'fixtures', 'images');
const CLIP = path.join(__dirname, 'fixtures', 'vision', 'clip');

function run(...args: Array<string | Record<string, string>>) {
  const env = { ...process.env, HF_HUB_CACHE: path.join(tmp, 'hub'), TINYEMO_CACHE: path.join(tmp, 'tinyemo') } as Record<string, string | undefined>;
  delete env.HF_HUB_OFFLINE;
  delete env.HF_ENDPOINT;
  const argv: string[] = [];
  for (const a of args) {
    if (typeof a === 'string') argv.push(a);
    else Object.assign(env, a);
  }
  return spawnSync(process.execPath, [bin, ...argv], { encoding: 'utf8', env });
}

let tmp: string;
let images: string;
let feats: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tinyemo-cli-img-'));
  images = path.join(tmp, 'images');
  feats = path.join(tmp, 'features');
  const put = (cls: string, file: string, as = file) => {
    fs.mkdirSync(path.join(images, cls), { recursive: true });
    fs.copyFileSync(path.join(IMG, file), path.join(images, cls, as));
  };
  put('joy', 'photo_640x480.jpg');
  put('joy', 'wide_1023x257.webp');
  put('joy', 'tiny_20x31.jpg');
  put('sadness', 'grey_225x224.png');
  put('sadness', 'palette_500x375.png');
  put('sadness', 'cmyk_320x240.jpg');
  put('sadness/nested', 'odd_crop_299x374.png', 'deep.png');
  fs.writeFileSync(path.join(images, 'joy', 'broken.jpg'), 'not a jpeg at all');
  fs.writeFileSync(path.join(images, 'joy', 'notes.txt'), 'ignored: not an image name');
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

test('features: one safetensors per image at the same relative path, equal to the tower on the image; bad ones listed', async () => {
  const r = run('features', images, '--vision', CLIP, '--out', feats, '--batch-size', '3', '--json');
  expect(r.stderr).toMatch(/^skipped joy\/broken\.jpg: [^\n]+\n$/);
  expect(r.status).toBe(0);
  const j = JSON.parse(r.stdout) as { total: number; written: number; kept: number; dim: number; skipped: Array<{ file: string; code: string }> };
  expect(j).toMatchObject({ total: 8, written: 7, kept: 0, dim: 40 });
  expect(j.skipped).toEqual([expect.objectContaining({ file: path.join('joy', 'broken.jpg'), code: 'INVALID_FILE' })]);
  expect(JSON.parse(fs.readFileSync(path.join(feats, 'skipped.json'), 'utf8'))).toHaveLength(1);
  expect(fs.existsSync(path.join(feats, 'sadness', 'nested', 'deep.safetensors'))).toBe(true);
  expect(JSON.parse(fs.readFileSync(path.join(feats, 'tinyemo-features.json'), 'utf8'))).toMatchObject({ vision: CLIP, family: 'clip', dim: 40, dtype: 'f32' });

  // The file holds what the library computes for that image alone.
  const tower = ClipVision.load(CLIP);
  const pre = preprocessForFolder(CLIP, 'clip', 42);
  expect(pre).toMatchObject({ kind: 'clip', size: 42 });
  const px = preprocess([await readImage(path.join(images, 'joy', 'photo_640x480.jpg'))], pre);
  const out = await tower.forward(px);
  const want = out.imageEmbeds!.toArray() as Float32Array;
  const got = readFeatureVector(path.join(feats, 'joy', 'photo_640x480.safetensors'));
  expect(got.length).toBe(40);
  let err = 0;
  for (let i = 0; i < 40; ++i) err = Math.max(err, Math.abs(got[i] - want[i]));
  expect(err).toBeLessThan(1e-5);
  px.dispose();
  out.imageEmbeds!.dispose();
  tower.dispose();
});

test('features again: everything already there is kept (resume), a new image is added', () => {
  fs.copyFileSync(path.join(IMG, 'square_224x224.png'), path.join(images, 'sadness', 'square.png'));
  fs.rmSync(path.join(feats, 'joy', 'tiny_20x31.safetensors'));
  const r = run('features', images, '--vision', CLIP, '--out', feats, '--json');
  const j = JSON.parse(r.stdout) as { written: number; kept: number; skipped: unknown[] };
  expect(j).toMatchObject({ written: 2, kept: 6 });
  expect(j.skipped).toHaveLength(1);
  const other = run('features', images, '--vision', path.join(__dirname, 'fixtures', 'vision', 'siglip'), '--out', feats);
  expect(other.status).toBe(2);
  expect(other.stderr).toMatch(/holds features of .*clip \(40, f32\); use another --out/);
});

test('train on the features, then classify the images: the bundle names the tower', async () => {
  const model = path.join(tmp, 'model');
  const t = run('train', '--data', feats, '--out', model, '--val-split', '0', '--epochs', '3', '--batch-size', '4', '--hidden', '24', '--json');
  expect(t.status).toBe(0);
  const bundle = JSON.parse(fs.readFileSync(path.join(model, 'tinyemo.json'), 'utf8')) as { vision?: { model: string } };
  expect(bundle.vision).toEqual({ model: CLIP, output: 'image_embeds' });

  const files = [path.join(images, 'joy', 'photo_640x480.jpg'), path.join(images, 'joy', 'broken.jpg'), path.join(feats, 'sadness', 'grey_225x224.safetensors')];
  const c = run('classify', ...files, '--model', model, '--top-k', '2', '--json');
  // One line for the skipped image, its path said once.
  expect(c.stderr).toMatch(new RegExp(`^skipped ${files[1].replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: (?!.*broken\\.jpg).+\n$`));
  expect(c.status).toBe(0);
  const j = JSON.parse(c.stdout) as { results: Array<{ file: string; predictions: Array<{ label: string; score: number }> }>; skipped: Array<{ file: string }> };
  expect(j.results.map((x) => x.file)).toEqual([files[0], files[2]]);
  expect(j.skipped.map((x) => x.file)).toEqual([files[1]]);
  for (const x of j.results) {
    expect(x.predictions).toHaveLength(2);
    expect(x.predictions.map((p) => p.label).sort()).toEqual(['joy', 'sadness']);
  }

  // The image and its precomputed features give the same answer through the library.
  const ic = ImageClassifier.load(model);
  const viaImage = await ic.classifyImages([files[0]], { topK: 2 });
  const fromFeatures = await ic.classifier.classify(readFeatureVector(path.join(feats, 'joy', 'photo_640x480.safetensors')), { topK: 2 });
  expect(viaImage.results[0].predictions.map((p) => p.label)).toEqual(fromFeatures[0].map((p) => p.label));
  viaImage.results[0].predictions.forEach((p, i) => expect(p.score).toBeCloseTo(fromFeatures[0][i].score, 5));
  ic.dispose();
});

test('classify without --model, offline and not cached: one message names every missing model and how to get it', () => {
  const r = run('classify', path.join(images, 'joy', 'photo_640x480.jpg'), { HF_HUB_OFFLINE: '1' });
  expect(r.status).toBe(2);
  expect(r.stderr).toMatch(
    /no --model given, and the default models are not all in the Hugging Face cache or tinyemo's; missing: openai\/clip-vit-large-patch14, ggcristian\/TinyEmo-CLIP-OpenELM-450M, apple\/OpenELM-450M-Instruct, TinyLlama\/TinyLlama-1.1B-Chat-v1.0/,
  );
  expect(r.stderr).toMatch(
    /tinyemo pull openai\/clip-vit-large-patch14 --only vision && tinyemo pull ggcristian\/TinyEmo-CLIP-OpenELM-450M --include '\*.bin' --include '\*.safetensors' && tinyemo pull apple\/OpenELM-450M-Instruct --only embeddings/,
  );
  expect(r.stderr).toMatch(/\[NOT_FOUND\]$/m);
  expect(r.stderr).not.toMatch(/downloading/);
});

test('classify without --model, online but the hub unreachable: it tries, says why, then the same message', () => {
  const r = run('classify', path.join(images, 'joy', 'photo_640x480.jpg'), { HF_ENDPOINT: 'http://127.0.0.1:1' });
  expect(r.status).toBe(2);
  expect(r.stderr).toMatch(/downloading openai\/clip-vit-large-patch14 \(the default models\)/);
  expect(r.stderr).toMatch(/could not download: openai\/clip-vit-large-patch14: could not reach http:\/\/127.0.0.1:1/);
  expect(r.stderr).toMatch(/missing: openai\/clip-vit-large-patch14, .*\[NOT_FOUND\]/);
});

test('classify: a vision tower whose embeddings do not fit the projector is refused', () => {
  const model = path.join(tmp, 'model');
  const r = run('classify', path.join(images, 'joy', 'photo_640x480.jpg'), '--model', model, '--vision', path.join(__dirname, 'fixtures', 'vision', 'siglip'));
  expect(r.status).toBe(2);
  expect(r.stderr).toMatch(/makes 144-value embeddings; the projector takes 40 \[SHAPE_MISMATCH\]/);
});

test('classify without --model, defaults in the cache: tower, released-style projector, OpenELM label space with TinyLlama tokenizer', async () => {
  const cache = path.join(tmp, 'hub');
  const snapshot = (repo: string) => {
    const commit = 'c0ffee'.padEnd(40, '0');
    fs.mkdirSync(path.join(repoDir(cache, repo), 'refs'), { recursive: true });
    fs.writeFileSync(path.join(repoDir(cache, repo), 'refs', 'main'), commit);
    const dir = path.join(repoDir(cache, repo), 'snapshots', commit);
    fs.mkdirSync(dir, { recursive: true });
    return dir;
  };
  const vision = snapshot('openai/clip-vit-large-patch14');
  for (const f of fs.readdirSync(CLIP)) fs.copyFileSync(path.join(CLIP, f), path.join(vision, f));
  const H = 24;
  const proj = Projector.init(40, H, H, 5);
  proj.save(path.join(snapshot('ggcristian/TinyEmo-CLIP-OpenELM-450M'), 'TinyEmo-CLIP-OpenELM-450M.safetensors'));
  proj.dispose();
  const llm = snapshot('apple/OpenELM-450M-Instruct');
  const table = Tensor.from(new Rng(9).floats(32000 * H), [32000, H]);
  const half = table.toSync('f16');
  writeSafetensors(path.join(llm, 'model.safetensors'), { 'transformer.token_embeddings.weight': half });
  [table, half].forEach((t) => t.dispose());
  const tok = snapshot('TinyLlama/TinyLlama-1.1B-Chat-v1.0');
  for (const f of ['tokenizer.json', 'tokenizer_config.json']) fs.copyFileSync(path.join(tokenizerFixture('llama'), f), path.join(tok, f));

  const photo = path.join(images, 'joy', 'photo_640x480.jpg');
  const r = run('classify', photo, '--top-k', '6', '--json');
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  const j = JSON.parse(r.stdout) as { results: Array<{ predictions: Array<{ label: string; score: number }> }> };
  const got = j.results[0].predictions;
  expect(got.map((p) => p.label).sort()).toEqual(['anger', 'disgust', 'fear', 'joy', 'sadness', 'surprise']);

  // The same by hand: Emotion6 labels in OpenELM's space, the projector, the tower's embedding.
  const labels = LabelSpace.fromLlm(['anger', 'disgust', 'fear', 'joy', 'sadness', 'surprise'], llm, { tokenizerDir: tok });
  const cls = MetricClassifier.load(
    path.join(repoDir(cache, 'ggcristian/TinyEmo-CLIP-OpenELM-450M'), 'snapshots', 'c0ffee'.padEnd(40, '0'), 'TinyEmo-CLIP-OpenELM-450M.safetensors'),
    { labels },
  );
  const tower = ClipVision.load(vision);
  const px = preprocess([await readImage(photo)], preprocessForFolder(vision, 'clip', 42));
  const out = await tower.forward(px);
  const want = (await cls.classify(out.imageEmbeds!.toArray() as Float32Array, { topK: 6 }))[0];
  expect(got.map((p) => p.label)).toEqual(want.map((p) => p.label));
  got.forEach((p, i) => expect(p.score).toBeCloseTo(want[i].score, 5));
  // The label table was cached after its first use, and it is the table the label space makes.
  const labelsDir = path.join(tmp, 'tinyemo', 'labels');
  const cached = fs.readdirSync(labelsDir).map((f) => path.join(labelsDir, f));
  expect(cached).toHaveLength(1);
  const fromCache = LabelSpace.load(cached[0]);
  expect(fromCache.names).toEqual(labels.names);
  expect(Array.from(fromCache.table)).toEqual(Array.from(labels.table));
  expect(fromCache.describe()).toBe(labels.describe());
  // ... and it is what the next run reads: rows given other names there change the answer's names, not its scores.
  const rotated = [...labels.names.slice(1), labels.names[0]];
  new LabelSpace(rotated, fromCache.table, fromCache.dim, fromCache.source).save(cached[0]);
  const again = (JSON.parse(run('classify', photo, '--top-k', '6', '--json').stdout) as typeof j).results[0].predictions;
  expect(again.map((p) => p.score)).toEqual(got.map((p) => p.score));
  expect(again.map((p) => p.label)).toEqual(got.map((p) => rotated[labels.names.indexOf(p.label)]));
  fromCache.save(cached[0]);
  const mikels = run('classify', photo, '--taxonomy', 'mikels8', '--top-k', '8', '--json');
  expect((JSON.parse(mikels.stdout) as typeof j).results[0].predictions).toHaveLength(8);
  expect(fs.readdirSync(labelsDir)).toHaveLength(2);

  // The same from partial downloads (tinyemo pull --only: the tower, the embedding table) in tinyemo's cache,
  // with only the projector and the tokenizer in the hub cache.
  const partialCache = path.join(tmp, 'partial-only');
  const partial = (repo: string, subset: string, from: string) => {
    const commit = 'c0ffee'.padEnd(40, '0');
    const base = path.join(partialCache, 'partial', `models--${repo.replace('/', '--')}`);
    fs.mkdirSync(path.join(base, 'refs'), { recursive: true });
    fs.writeFileSync(path.join(base, 'refs', 'main'), commit);
    const dir = path.join(base, commit, subset);
    fs.mkdirSync(dir, { recursive: true });
    for (const f of fs.readdirSync(from)) fs.copyFileSync(path.join(from, f), path.join(dir, f));
    fs.writeFileSync(path.join(dir, 'partial.json'), JSON.stringify({ repo, commit, subset, sources: [], tensors: 1, bytes: 1, ofBytes: 1 }));
  };
  partial('openai/clip-vit-large-patch14', 'vision', vision);
  partial('apple/OpenELM-450M-Instruct', 'embeddings', llm);
  const hubOnly = path.join(tmp, 'hub-only');
  for (const repo of ['ggcristian/TinyEmo-CLIP-OpenELM-450M', 'TinyLlama/TinyLlama-1.1B-Chat-v1.0']) fs.cpSync(repoDir(cache, repo), repoDir(hubOnly, repo), { recursive: true });
  const viaPartial = run('classify', photo, '--top-k', '6', '--json', { HF_HUB_CACHE: hubOnly, TINYEMO_CACHE: partialCache, HF_HUB_OFFLINE: '1' });
  expect(viaPartial.stderr).toBe('');
  expect((JSON.parse(viaPartial.stdout) as typeof j).results[0].predictions).toEqual(got);
  for (const t of [px, out.imageEmbeds!]) t.dispose();
  tower.dispose();
  cls.dispose();
});

test('bias on a folder of images: encoded through the tower the model names, unreadable images listed', () => {
  const model = path.join(tmp, 'model');
  const attrs = path.join(tmp, 'attrs.csv');
  const ids = ['joy/photo_640x480', 'joy/wide_1023x257', 'joy/tiny_20x31', 'sadness/grey_225x224', 'sadness/palette_500x375', 'sadness/cmyk_320x240', 'sadness/square'];
  fs.writeFileSync(attrs, ['id,light', ...ids.map((id, i) => `${id},${i % 2 ? 'day' : 'night'}`)].join('\n'));
  const r = run(
    'bias',
    '--model',
    model,
    '--data',
    images,
    '--attributes',
    attrs,
    '--min-group',
    '2',
    '--permutations',
    '200',
    '--bootstrap',
    '200',
    '--out',
    path.join(tmp, 'bias'),
    '--json',
  );
  expect(r.status).toBe(0);
  const j = JSON.parse(r.stdout) as {
    n: number;
    warnings: string[];
    skipped: Array<{ file: string }>;
    groups: Array<{ attribute: string; group: string; n: number }>;
    findings: Array<{ id: string }>;
  };
  expect(j.n).toBe(8);
  expect(j.skipped.map((x) => path.relative(images, x.file))).toEqual([path.join('joy', 'broken.jpg')]);
  expect(r.stderr).toMatch(/skipped .*joy\/broken\.jpg: /);
  expect(j.warnings.join(' ')).toMatch(/1 of 8 samples have no row/);
  expect(j.groups.map((g) => `${g.group}:${g.n}`).sort()).toEqual(['day:3', 'night:4']);
  expect(j.findings.some((f) => f.id.startsWith('rate:light='))).toBe(true);
});
