/** Where the real Emotion6 CLIP features are (TINYEMO_EMOTION6, else ../shared/data), and whether they are there. */
import * as fs from 'fs';
import * as path from 'path';

export const EMOTION6 = process.env.TINYEMO_EMOTION6 ?? path.join(__dirname, '..', '..', '..', 'shared', 'data', 'emotion6-clip-vit-l14');
export const EMOTION6_TRAIN = path.join(EMOTION6, 'train');
export const HAS_EMOTION6 = fs.existsSync(EMOTION6_TRAIN);

/** describe, or describe.skip with a message saying where the data was looked for. */
export function describeWithEmotion6(name: string, fn: () => void): void {
  if (!HAS_EMOTION6) console.warn(`skipped "${name}": the Emotion6 features are not at ${EMOTION6} (set TINYEMO_EMOTION6)`);
  (HAS_EMOTION6 ? describe : describe.skip)(name, fn);
}
