/**
 * Emotion taxonomies of the data sets TinyEmo was trained and evaluated on,
 * with the class spellings their releases use as folder names.
 */
export interface Taxonomy {
  name: string;
  classes: readonly string[];
  /** Where the list comes from. */
  source: string;
}

export const TAXONOMIES: Readonly<Record<string, Taxonomy>> = {
  emotion6: {
    name: 'Emotion6',
    classes: ['anger', 'disgust', 'fear', 'joy', 'sadness', 'surprise'],
    source: "Peng et al. 2015 (Ekman's six basic emotions; the 'neutral' ratings are not a class)",
  },
  emotionroi: {
    name: 'EmotionROI',
    classes: ['anger', 'disgust', 'fear', 'joy', 'sadness', 'surprise'],
    source: 'Peng et al. 2016',
  },
  mikels8: {
    name: "Mikels' eight (FI, EmoSet, ArtPhoto, Abstract)",
    classes: ['amusement', 'anger', 'awe', 'contentment', 'disgust', 'excitement', 'fear', 'sadness'],
    source: 'Mikels et al. 2005; FI (You et al. 2016), EmoSet (Yang et al. 2023), ArtPhoto and Abstract (Machajdik and Hanbury 2010)',
  },
  webemo25: {
    name: 'WEBEmo (25)',
    classes: [
      'affection',
      'cheerfullness',
      'confusion',
      'contentment',
      'disappointment',
      'disgust',
      'enthrallment',
      'envy',
      'exasperation',
      'gratitude',
      'horror',
      'irritabilty',
      'lust',
      'neglect',
      'nervousness',
      'optimism',
      'pride',
      'rage',
      'relief',
      'sadness',
      'shame',
      'suffering',
      'surprise',
      'sympathy',
      'zest',
    ],
    source: "Panda et al. 2018, Parrott's tertiary emotions (the release's own spellings, e.g. 'cheerfullness', 'irritabilty')",
  },
  unbiasedemo: {
    name: 'UnbiasedEmo',
    classes: ['anger', 'fear', 'joy', 'love', 'sadness', 'surprise'],
    source: 'Panda et al. 2018',
  },
};

/** The taxonomy whose classes are exactly these folder names, if any. */
export function findTaxonomy(classes: readonly string[]): string | undefined {
  const key = [...classes].sort().join('|');
  return Object.keys(TAXONOMIES).find((k) => [...TAXONOMIES[k].classes].sort().join('|') === key);
}

/** Natural-language forms of class names for label prompts (the release's misspellings fixed). */
export const LABEL_TEXT: Readonly<Record<string, string>> = { cheerfullness: 'cheerfulness', irritabilty: 'irritability' };
