/** The synthetic tasks' prompts and answer checks, without a teacher. */
import { Rng } from '../lib/util/rng';
import { judgeAnswer, labelOptions, makeRecord, teacherRequest } from '../lib/data/synth_tasks';
import { parseReasoning, reasonInstruction } from '../lib/text/emotion_prompts';
import { recordProblem } from '../lib/data/instruct';

const item = { id: 'joy/7', image: 'joy/7.jpg', label: 'joy' };
const TAX = ['amusement', 'anger', 'awe', 'contentment', 'disgust', 'excitement', 'fear', 'joy', 'sadness'];

test('label options: always the gold label, at least two, a shuffled subset (or all of them)', () => {
  const sizes = new Set<number>();
  const firsts = new Set<string>();
  for (let s = 0; s < 200; ++s) {
    const o = labelOptions(TAX, 'joy', new Rng(s));
    expect(o).toContain('joy');
    expect(new Set(o).size).toBe(o.length);
    expect(o.length).toBeGreaterThanOrEqual(2);
    expect(o.every((l) => TAX.includes(l))).toBe(true);
    sizes.add(o.length);
    firsts.add(o[0]);
  }
  expect(sizes.size).toBeGreaterThan(4);
  expect(firsts.size).toBeGreaterThan(4);
  expect(labelOptions(TAX, 'joy', new Rng(1), true).sort()).toEqual([...TAX].sort());
});

test("reason: TinyEmo's instruction, the exact answer form, the gold label required", () => {
  const req = teacherRequest('reason', item, TAX, new Rng(3));
  expect(req.human).toMatch(
    /^Provide emotional reasoning about the image, on what you feel and how is the depicted emotion\. Also choose the emotion that best corresponds to the image from the following options:\n\nLabels: \[[a-z, ]+\]\n\nImportant: note that the correct label is joy\.$/,
  );
  expect(reasonInstruction(['joy', 'fear'], 'joy')).toContain('Labels: [joy, fear]');
  expect(judgeAnswer('reason', req, item, 'Reasoning: Bright faces.\n\nPredicted Label: Joy.')).toEqual({
    ok: true,
    human: req.human,
    answer: 'Reasoning: Bright faces.\n\nPredicted Label: joy',
  });
  expect(judgeAnswer('reason', req, item, 'Reasoning: Dark.\n\nPredicted Label: fear')).toEqual({ ok: false, reason: 'wrong label' });
  expect(judgeAnswer('reason', req, item, 'It is joy.')).toMatchObject({ ok: false });
  expect(judgeAnswer('reason', req, item, '  ')).toEqual({ ok: false, reason: 'empty answer' });
  expect(parseReasoning('Reasoning: a\nb\n\nPredicted Label: awe')).toEqual({ reasoning: 'a\nb', label: 'awe' });
});

test('vqa and sqa: the question comes from the answer; caption keeps the fixed prompt', () => {
  for (const task of ['vqa', 'sqa'] as const) {
    const req = teacherRequest(task, item, TAX, new Rng(0));
    expect(req.prompt).toMatch(/Question: <the question>\nAnswer: <the answer>/);
    const v = judgeAnswer(task, req, item, 'Question: What is the child holding?\nAnswer: A red balloon.');
    expect(v).toEqual({ ok: true, human: 'What is the child holding?', answer: 'A red balloon.' });
    expect(judgeAnswer(task, req, item, 'A red balloon.')).toEqual({ ok: false, reason: 'not in "Question: ... Answer: ..." form' });
    if (v.ok) expect(recordProblem(makeRecord(task, item, v.human, v.answer, 't'))).toBeUndefined();
  }
  const cap = teacherRequest('caption', item, TAX, new Rng(0));
  expect(judgeAnswer('caption', cap, item, 'A girl laughs. <image>')).toEqual({ ok: false, reason: 'answer contains "<image>"' });
  const r = judgeAnswer('caption', cap, item, ' A girl laughs. ');
  expect(r).toEqual({ ok: true, human: 'Describe the image.', answer: 'A girl laughs.' });
});
