/**
 * The synthetic tasks of TinyEmo's instruct data: what the teacher is asked,
 * what goes into the record, and whether an answer is usable.
 *
 *   caption  "Describe the image."                       (pre-training captions)
 *   vqa      the teacher asks and answers a question about the image
 *   sqa      the same about the feelings the image conveys
 *   reason   TinyEmo's instruction with a label list and the gold label as
 *            the hint; the answer must read "Reasoning: ...\n\nPredicted Label: X"
 *            with X the gold label
 */
import { Rng } from '../util/rng';
import { parseReasoning, reasonInstruction } from '../text/emotion_prompts';
import { IMAGE_PLACEHOLDER, InstructRecord } from './instruct';

export type SynthTask = 'caption' | 'vqa' | 'sqa' | 'reason';
export const SYNTH_TASKS: readonly SynthTask[] = ['caption', 'vqa', 'sqa', 'reason'];

export const CAPTION_PROMPT = 'Describe the image.';

export interface SynthItem {
  /** Sample id: the image's path relative to the data folder, without extension. */
  id: string;
  /** Path relative to the data folder (the record's "image"). */
  image: string;
  label: string;
}

export interface TeacherRequest {
  /** The text sent with the image. */
  prompt: string;
  /** The human turn stored in the record (after "<image>\n"); for vqa/sqa it comes from the answer. */
  human?: string;
}

/**
 * A random-size subset of the taxonomy that contains the gold label (at
 * least two labels), shuffled; or the whole list, shuffled, with `full`.
 */
export function labelOptions(taxonomy: readonly string[], gold: string, rng: Rng, full = false): string[] {
  const others = taxonomy.filter((l) => l !== gold);
  rng.shuffle(others);
  const k = full ? others.length : 1 + rng.int(others.length);
  const chosen = [gold, ...others.slice(0, k)];
  rng.shuffle(chosen);
  return chosen;
}

export function teacherRequest(task: SynthTask, item: SynthItem, taxonomy: readonly string[], rng: Rng, fullLabels = false): TeacherRequest {
  switch (task) {
    case 'caption':
      return { prompt: CAPTION_PROMPT, human: CAPTION_PROMPT };
    case 'vqa':
      return {
        prompt:
          'Ask one specific question about the content of this image and answer it yourself. ' + 'Reply in exactly this form:\nQuestion: <the question>\nAnswer: <the answer>',
      };
    case 'sqa':
      return {
        prompt:
          'Ask one question about the feelings, mood or sentiment this image conveys and answer it yourself. ' +
          'Reply in exactly this form:\nQuestion: <the question>\nAnswer: <the answer>',
      };
    case 'reason': {
      const instruction = reasonInstruction(labelOptions(taxonomy, item.label, rng, fullLabels), item.label);
      return {
        prompt: `${instruction}\nReply in exactly this form:\nReasoning: <your reasoning>\n\nPredicted Label: ${item.label}`,
        human: instruction,
      };
    }
  }
}

export type Verdict = { ok: true; human: string; answer: string } | { ok: false; reason: string };

const QA = /^\s*Question:\s*(.+?)\s*\n+\s*Answer:\s*([\s\S]+?)\s*$/;
/** Checks a teacher's answer and turns it into the record's human and gpt turns. */
export function judgeAnswer(task: SynthTask, req: TeacherRequest, item: SynthItem, answer: string): Verdict {
  const text = answer.trim();
  if (!text) return { ok: false, reason: 'empty answer' };
  if (text.includes(IMAGE_PLACEHOLDER)) return { ok: false, reason: 'answer contains "<image>"' };
  if (task === 'caption') return { ok: true, human: req.human!, answer: text };
  if (task === 'vqa' || task === 'sqa') {
    const m = QA.exec(text);
    if (!m) return { ok: false, reason: 'not in "Question: ... Answer: ..." form' };
    return { ok: true, human: m[1], answer: m[2] };
  }
  const r = parseReasoning(text);
  if (!r) return { ok: false, reason: 'not in "Reasoning: ...\\n\\nPredicted Label: X" form' };
  if (r.label.toLowerCase() !== item.label.toLowerCase()) return { ok: false, reason: 'wrong label' };
  if (!r.reasoning) return { ok: false, reason: 'empty reasoning' };
  // The stored answer is normalised to the exact form, with the gold label's own spelling.
  return { ok: true, human: req.human!, answer: `Reasoning: ${r.reasoning}\n\nPredicted Label: ${item.label}` };
}

export function makeRecord(task: SynthTask, item: SynthItem, human: string, answer: string, teacher: string): InstructRecord {
  return {
    id: `${task}:${item.id}`,
    image: item.image,
    conversations: [
      { from: 'human', value: `${IMAGE_PLACEHOLDER}\n${human}` },
      { from: 'gpt', value: answer },
    ],
    task,
    label: item.label,
    teacher,
  };
}
